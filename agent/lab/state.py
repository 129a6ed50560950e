"""The lab's record of what it created (``state.json`` in the lab directory), written before each step."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_DIR = "/var/lib/kiln-lab"


def lab_dir() -> Path:
    """$KILN_LAB_DIR, else /var/lib/kiln-lab."""
    return Path(os.environ.get("KILN_LAB_DIR") or DEFAULT_DIR)


class State:
    """What the lab created, as lists by kind; saved atomically after every change."""

    KINDS = ("netns", "links", "domains", "pools", "processes", "rabbit", "files")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "state.json"
        self.data: dict[str, Any] = {kind: [] for kind in self.KINDS}
        self.data["info"] = {}

    @classmethod
    def load(cls, directory: Path) -> State | None:
        """The state saved in ``directory``; None when there is none."""
        state = cls(directory)
        try:
            saved = json.loads(state.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read the lab state {state.path}: {exc}; remove it by hand") from exc
        state.data.update(saved)
        return state

    def save(self) -> None:
        """Write the state file (atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def add(self, kind: str, item: Any) -> None:
        """Record that ``item`` of ``kind`` is about to exist."""
        self.data[kind].append(item)
        self.save()

    def items(self, kind: str) -> list[Any]:
        """The recorded items of ``kind``, newest first (the order to remove them in)."""
        return list(reversed(self.data.get(kind, [])))

    @property
    def info(self) -> dict[str, Any]:
        """Facts about the lab (addresses, ports, passwords) for tests and people."""
        return self.data["info"]
