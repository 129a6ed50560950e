"""Installing Kiln on a host: system user, configuration, first admin credential, systemd units."""
