"""Kiln: bare-metal provisioning for GPU fleets."""
