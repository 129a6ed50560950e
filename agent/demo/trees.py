"""Find the sysfs fixture trees the demo's simulated nodes read."""

from __future__ import annotations

import os
from dataclasses import dataclass

# The constructed trees of tests/fixtures/sysfs/ the demo runs by default, in display order.
DEFAULT_TREES = ("hgx-h100", "mi300x", "storage-sas", "vm")
_FIXTURES_IN_CHECKOUT = os.path.join("tests", "fixtures", "sysfs")


@dataclass(frozen=True)
class Tree:
    """A simulated node: a display name and the root its agent inventories."""

    name: str
    root: str


def checkout_fixtures() -> str | None:
    """tests/fixtures/sysfs of the checkout this package runs from, else of the current directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    # An editable install runs from the checkout; `pip install .` then `kiln-demo` in the
    # checkout (the README's quick start) finds the trees in the working directory.
    for candidate in (
        os.path.join(os.path.dirname(os.path.dirname(here)), _FIXTURES_IN_CHECKOUT),
        os.path.join(os.getcwd(), _FIXTURES_IN_CHECKOUT),
    ):
        if os.path.isdir(candidate):
            return candidate
    return None


def is_tree(path: str) -> bool:
    """Say whether ``path`` looks like a host root (it has sys/ or proc/)."""
    return os.path.isdir(os.path.join(path, "sys")) or os.path.isdir(os.path.join(path, "proc"))


def find_trees(fixtures_dir: str | None, names: list[str] | None = None) -> tuple[list[Tree], list[str]]:
    """The trees to simulate and notes on what was missing.

    ``fixtures_dir`` None means the checkout's tests/fixtures/sysfs. ``names`` None means
    DEFAULT_TREES when they are there, else every tree in the directory (sorted).
    """
    notes: list[str] = []
    base = fixtures_dir or checkout_fixtures()
    if base is None:
        return [], [
            "no fixture trees: this kiln is installed without its tests/ directory (pass --fixtures DIR)"
        ]
    if not os.path.isdir(base):
        raise NotADirectoryError(f"--fixtures {base}: not a directory")
    present = sorted(d for d in os.listdir(base) if is_tree(os.path.join(base, d)))
    if names is None:
        wanted = [n for n in DEFAULT_TREES if n in present] or present
    else:
        wanted = list(names)
    trees = []
    for name in wanted:
        root = os.path.join(base, name)
        if name in present:
            trees.append(Tree(name, root))
        else:
            notes.append(
                f"fixture tree {name!r} not found under {base} (found: {', '.join(present) or 'none'})"
            )
    if not trees and names is None:
        notes.append(f"{base} holds no sysfs trees (directories with sys/ or proc/)")
    return trees, notes
