"""Driver interface names in Ironic's spelling: the one list the API, the database and the conductor share."""

NODE_INTERFACES: tuple[str, ...] = (
    "bios",
    "boot",
    "console",
    "deploy",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
)
"""Every interface a node names in a ``<name>_interface`` field, as Ironic's node does."""

VALIDATED_INTERFACES: tuple[str, ...] = tuple(name for name in NODE_INTERFACES if name != "vendor")
"""Interfaces a node validation reports on (Ironic leaves vendor out)."""

COMPOSED_INTERFACES: tuple[str, ...] = (
    "bios",
    "boot",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
)
"""The interface types Kiln composes a node of (sorted); each has a base class in the conductor's drivers."""
