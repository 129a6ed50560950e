"""What a step may use: the options, the inventory, the disk map and a stop flag."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from oslo_config import cfg

from agent.node.steps import devices


@dataclass
class StepContext:
    """Shared by every step of one agent."""

    conf: cfg.ConfigOpts
    inventory: Callable[[], dict]
    node_uuid: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    #: Whether the inventory is this machine's own hardware (False: a captured tree or a simulated
    #: node). Steps that act on GPUs through the driver (reset, burn-in) act only then.
    live: bool = True

    @property
    def opts(self) -> cfg.ConfigOpts.GroupAttr:
        """The [agent] option group."""
        return self.conf.agent

    def disk_map(self) -> dict[str, str]:
        """[agent]disk_map: inventory disk name -> stand-in file or loop device."""
        return dict(self.opts.disk_map or {})

    def disks(self) -> list[dict]:
        """The inventory's disks (collected now)."""
        inv = self.inventory() or {}
        return [d for d in inv.get("disks") or [] if isinstance(d, dict) and d.get("name")]

    def target(self, name: str) -> str:
        """The path to write for disk ``name`` (through the disk map)."""
        return devices.target_path(name, self.disk_map())
