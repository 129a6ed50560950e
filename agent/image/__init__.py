"""The test OS image: a whole-disk qcow2 with GRUB (BIOS and UEFI) and cloud-init (ConfigDrive)."""
