"""The demo's conductor: the real ConductorManager, telling the demo what it just did."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from agent.conductor.manager import ConductorManager


@dataclass(frozen=True)
class Event:
    """One thing the conductor did for a node, after it was done."""

    kind: str  # "lookup", "report", "heartbeat"
    node_uuid: str
    at: float = field(default_factory=time.monotonic)
    token_issued: bool = False
    state: str | None = None
    traits: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    system_uuid: str | None = None


class DemoConductor(ConductorManager):
    """ConductorManager whose agent endpoints put an Event on ``events`` after each success."""

    def __init__(self, host: str, events: queue.Queue) -> None:
        super().__init__(host)
        self.events = events
        self._beaten: set[str] = set()
        self._lock = threading.Lock()

    def lookup(self, ctxt: dict, macs: list[str], system_uuid: str | None = None, bootif: str | None = None):
        """Look the node up (enrolling it), then report it."""
        answer = super().lookup(ctxt, macs, system_uuid, bootif)
        node = answer.get("node") or {}
        self.events.put(
            Event(
                "lookup",
                node.get("uuid") or "?",
                token_issued=bool(answer.get("agent_token")),
                state=node.get("provision_state"),
                macs=tuple(macs or ()),
                system_uuid=system_uuid,
            )
        )
        return answer

    def report_inventory(self, ctxt: dict, node_uuid: str, agent_token: str, inventory: dict, changes=None):
        """Store the inventory, then report the traits it gave the node."""
        answer = super().report_inventory(ctxt, node_uuid, agent_token, inventory, changes)
        self.events.put(Event("report", node_uuid, traits=tuple(answer.get("traits") or ())))
        return answer

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """Record the heartbeat, then report the first one of each node."""
        super().heartbeat(ctxt, node_uuid, agent_token, status)
        with self._lock:
            first = node_uuid not in self._beaten
            self._beaten.add(node_uuid)
        if first:
            self.events.put(Event("heartbeat", node_uuid))
