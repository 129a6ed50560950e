"""Read-only hardware discovery from sysfs, procfs and the udev database."""
