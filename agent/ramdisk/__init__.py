"""Kiln's deploy ramdisk: built from Debian with mmdebstrap, running kiln-agent under systemd."""
