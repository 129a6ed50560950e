"""Test-only kiln.conductor endpoints that record what agents send: a stand-in and the real manager."""

from __future__ import annotations

import copy
import threading
import time

import oslo_messaging as messaging

from agent.common import exception
from agent.conductor.manager import ConductorManager


class RecordingConductor:
    """Answers lookup once with a token (as Ironic does), checks tokens, records every call."""

    target = messaging.Target(version="1.0")

    def __init__(self, node_uuid: str, token: str, heartbeat_interval: int = 1) -> None:
        self.node_uuid = node_uuid
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.token_issued = False
        self.config_extra: dict = {}  # more of lookup's "config" (heartbeat_topic, ...)
        self.calls: list[tuple[str, dict]] = []
        self.rejected: list[tuple[str, str | None]] = []
        self._cond = threading.Condition()

    def _record(self, method: str, **kwargs) -> None:
        with self._cond:
            self.calls.append((method, copy.deepcopy(kwargs)))
            self._cond.notify_all()

    def _check(self, method: str, node_uuid: str, agent_token: str | None) -> None:
        if node_uuid != self.node_uuid or agent_token != self.token:
            with self._cond:
                self.rejected.append((method, agent_token))
                self._cond.notify_all()
            raise exception.InvalidAgentToken(node=node_uuid)

    def of(self, method: str) -> list[dict]:
        """The recorded arguments of every call of ``method``."""
        with self._cond:
            return [kw for m, kw in self.calls if m == method]

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        """Wait until ``predicate(self)`` is true; say whether it became true in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def lookup(self, ctxt, macs, system_uuid=None, bootif=None):
        self._record("lookup", macs=macs, system_uuid=system_uuid, bootif=bootif)
        token = None if self.token_issued else self.token
        self.token_issued = True
        return {
            "node": {
                "uuid": self.node_uuid,
                "name": "node-0",
                "provision_state": "enroll",
                "driver_internal_info": {},
            },
            "agent_token": token,
            "config": {
                "heartbeat_interval": self.heartbeat_interval,
                "heartbeat_timeout": 3 * self.heartbeat_interval,
                "agent_topic": "kiln.agent",
                **self.config_extra,
            },
        }

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def report_inventory(self, ctxt, node_uuid, agent_token, inventory, changes=None):
        self._check("report_inventory", node_uuid, agent_token)
        self._record("report_inventory", node_uuid=node_uuid, inventory=inventory, changes=changes)
        return {"stored": True, "traits": []}

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def heartbeat(self, ctxt, node_uuid, agent_token, status):
        self._check("heartbeat", node_uuid, agent_token)
        self._record("heartbeat", node_uuid=node_uuid, status=status)

    @messaging.expected_exceptions(exception.InvalidAgentToken)
    def step_result(self, ctxt, node_uuid, agent_token, step, result):
        self._check("step_result", node_uuid, agent_token)
        self._record("step_result", node_uuid=node_uuid, step=step, result=result)


class StepResultsSeen(ConductorManager):
    """The real ConductorManager (token check, node lock, deploy hook); remembers each result it took."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.results: list[dict] = []
        self._cond = threading.Condition()

    def step_result(self, ctxt, node_uuid, agent_token, step, result):
        super().step_result(ctxt, node_uuid, agent_token, step, result)
        with self._cond:
            self.results.append({"node_uuid": node_uuid, "step": step, "result": result})
            self._cond.notify_all()

    def wait_results(self, count: int, timeout: float = 30.0) -> list[dict]:
        """Wait until ``count`` results arrived; return them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.results) >= count, timeout)
            return list(self.results)
