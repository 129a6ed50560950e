"""Build small sysfs/procfs trees in a temporary directory for the inventory tests."""

from __future__ import annotations

import os

import pytest

from agent.inventory.base import Root


class Tree:
    """A fake host root: write files and relative symlinks at host paths."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def host(self, rel: str) -> str:
        """Return the on-disk path of a host path."""
        return os.path.join(self.path, rel.lstrip("/"))

    def write(self, rel: str, content: str | bytes = "") -> Tree:
        """Write a file (text gets a trailing newline, as sysfs does)."""
        path = self.host(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, str):
            content = (content + "\n").encode() if content else b""
        with open(path, "wb") as f:
            f.write(content)
        return self

    def files(self, rel_dir: str, **attrs: str | bytes) -> Tree:
        """Write several attribute files into one directory."""
        for name, value in attrs.items():
            self.write(f"{rel_dir}/{name}", value)
        return self

    def mkdir(self, rel: str) -> Tree:
        """Create a directory and its parents."""
        os.makedirs(self.host(rel), exist_ok=True)
        return self

    def link(self, rel: str, target: str) -> Tree:
        """Make ``rel`` a relative symlink to the host path ``target``, as the kernel does."""
        path = self.host(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(os.path.relpath(self.host(target), os.path.dirname(path)), path)
        return self


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sysfs")


def fixture_root(name: str) -> Root:
    """Return a Root on a fixture tree, skipping the test while the tree does not exist."""
    path = os.path.join(FIXTURES, name)
    if not os.path.isdir(os.path.join(path, "sys")):
        pytest.skip(f"fixture tree {name} is not there yet")
    return Root(path)
