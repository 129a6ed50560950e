"""Kiln's Ironic-compatible REST API (v1): a WSGI app that reads the database and calls conductors."""
