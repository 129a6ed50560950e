"""The steps the agent runs for the conductor: write an image, a configdrive, erase, power, logs."""
