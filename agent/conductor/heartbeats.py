"""The conductor's side of agents' heartbeats: token checks from a cache, batched writes, the fault.

Heartbeats have a topic of their own (HeartbeatEndpoint, served with few threads, or by the
heartbeat worker process), so that thousands of them never queue ahead of a lookup, an inventory
report or a step result. A heartbeat is checked against HeartbeatRecorder's cache (no database
round trip), its time is written with the others once a second, and the node is locked only when
a deploy, clean or inspect hook must run or the heartbeat fault must be cleared; the hook then
runs on a conductor worker (agent.conductor.workers), never in the heartbeat topic's threads.
"""

from __future__ import annotations

import datetime
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils
from sqlalchemy import event
from sqlalchemy.orm import Session

from agent.common import exception, states, tokens
from agent.common.tokens import hash_token, token_matches
from agent.common.utils import utcnow
from agent.conductor import task_manager, waits
from agent.conductor.drivers import driver_factory
from agent.db import engine as db_engine
from agent.db import heartbeats as db_heartbeats
from agent.db.models import Node

if TYPE_CHECKING:
    from agent.conductor.agent_endpoints import AgentEndpoints

LOG = logging.getLogger(__name__)

#: The node's fault while its agent is silent longer than [conductor]agent_heartbeat_timeout.
HEARTBEAT_FAULT = "agent heartbeat timeout"
#: Seconds between two writes of the heartbeats received meanwhile (one transaction each).
HEARTBEAT_FLUSH_INTERVAL = 1.0
#: How far back (s) each pass looks for nodes changed by other processes: longer than any
#: transaction plus the clock skew between conductors, so no change slips between two passes.
CACHE_REFRESH_SLACK = 30.0
#: Idle passes after which the flusher thread ends (the next heartbeat starts it again).
_FLUSHER_IDLE_PASSES = 5


#: Every live recorder, so that node changes committed in this process reach their caches.
_RECORDERS: weakref.WeakSet[HeartbeatRecorder] = weakref.WeakSet()
_CHANGED_KEY = "kiln_changed_nodes"


@event.listens_for(Session, "after_flush")
def _note_changed_nodes(session: Session, _flush_context: Any) -> None:
    changed = {
        obj.uuid
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, Node) and obj.uuid
    }
    if changed:
        session.info.setdefault(_CHANGED_KEY, set()).update(changed)


@event.listens_for(Session, "after_commit")
def _forget_changed_nodes(session: Session) -> None:
    changed = session.info.pop(_CHANGED_KEY, None)
    if changed:
        for recorder in list(_RECORDERS):
            recorder.invalidate(changed)


@event.listens_for(Session, "after_rollback")
def _drop_changed_nodes(session: Session) -> None:
    session.info.pop(_CHANGED_KEY, None)


def forget_nodes(uuids: Any) -> None:
    """Drop ``uuids`` from every recorder of this process (after a change made without the ORM)."""
    for recorder in list(_RECORDERS):
        recorder.invalidate(uuids)


class HeartbeatRecorder:
    """Agents' heartbeats without a database round trip each.

    Tokens are checked against a cache of {node uuid: id, token hash, provision_state, fault,
    updated_at}, read again on a miss or a mismatch. Entries go when this process commits a change
    to the node (a SQLAlchemy session hook), when another process changed it (each pass compares
    updated_at of the nodes changed in the last CACHE_REFRESH_SLACK seconds), when a heartbeat
    write finds the node gone, and all at once when no pass ran for a while or the database changed.
    Heartbeat times wait in memory and a thread writes them every ``interval`` seconds in one
    transaction (record_agent_heartbeats); ``flush()`` writes them now.
    """

    def __init__(self, interval: float = HEARTBEAT_FLUSH_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = {}
        self._generation = 0
        self._engine: Any = None
        self._pending: dict[int, datetime.datetime] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._refreshed = 0.0
        self._since: datetime.datetime | None = None
        _RECORDERS.add(self)

    # --- cache --------------------------------------------------------------------------------------

    def _same_database(self) -> None:
        """Forget everything when the process's database is not the one the cache was filled from."""
        engine = db_engine.current_engine()
        if engine is None:
            engine = db_engine.get_engine()
        if engine is not self._engine:
            self._cache.clear()
            self._pending.clear()
            self._engine = engine
            self._generation += 1
            self._since = None

    def invalidate(self, uuids: Any = None) -> None:
        """Drop the cache entries of ``uuids`` (all entries when None)."""
        with self._lock:
            self._generation += 1
            if uuids is None:
                self._cache.clear()
                return
            for uuid in uuids:
                self._cache.pop(uuid, None)

    def lookup(self, node_uuid: str, token_hash: str | None) -> dict[str, Any] | None:
        """The node's entry: from the cache when ``token_hash`` matches it, else read now; None if no node."""
        with self._lock:
            self._same_database()
            if self._cache and time.monotonic() - self._refreshed > max(5.0, 3 * self.interval):
                self._cache.clear()  # nobody kept it fresh (the flusher was idle): start over
                self._generation += 1
            entry = self._cache.get(node_uuid)
            generation = self._generation
        if entry is not None and token_hash and entry["agent_token_hash"]:
            if token_matches(entry["agent_token_hash"], token_hash):
                return entry
        entry = db_heartbeats.get_node_agent_auth(node_uuid)
        with self._lock:
            if entry is None:
                self._cache.pop(node_uuid, None)
            elif generation == self._generation:
                self._cache[node_uuid] = entry
                if self._since is None:
                    self._refreshed = time.monotonic()
                    self._since = utcnow()
        return entry

    def _refresh(self) -> None:
        """Drop entries of nodes changed (by anyone) since the last pass, minus the slack."""
        with self._lock:
            if not self._cache:
                self._since = None
                self._refreshed = time.monotonic()
                return
            since = self._since or utcnow()
        started = utcnow()
        changed = db_heartbeats.list_nodes_updated_since(
            since - datetime.timedelta(seconds=CACHE_REFRESH_SLACK)
        )
        with self._lock:
            for uuid, updated in changed.items():
                entry = self._cache.get(uuid)
                if entry is not None and entry["updated_at"] != updated:
                    del self._cache[uuid]
            self._since = started
            self._refreshed = time.monotonic()

    # --- pending heartbeats -----------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Note a heartbeat of the node of ``entry`` now; it is written at the next flush."""
        with self._lock:
            # To the second: the heartbeats of one second are then written by one UPDATE.
            self._pending[entry["id"]] = utcnow().replace(microsecond=0)
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="kiln-heartbeat-writer", daemon=True)
                self._thread.start()

    def pending(self) -> dict[int, datetime.datetime]:
        """The heartbeats not written yet: {node id: time}."""
        with self._lock:
            return dict(self._pending)

    def flush(self) -> int:
        """Write the pending heartbeats in one transaction and refresh the cache; how many were written."""
        with self._lock:
            batch, self._pending = self._pending, {}
            engine = self._engine
        written = 0
        if batch and db_engine.current_engine() is engine:
            try:
                missing = db_heartbeats.record_agent_heartbeats(batch)
            except Exception:
                with self._lock:  # keep them for the next pass (newer ones win)
                    for node_id, at in batch.items():
                        self._pending.setdefault(node_id, at)
                raise
            written = len(batch) - len(missing)
            if missing:
                gone = set(missing)
                with self._lock:
                    self._generation += 1
                    for uuid in [u for u, e in self._cache.items() if e["id"] in gone]:
                        del self._cache[uuid]
        elif batch:
            LOG.debug("Dropped %d heartbeats: the database changed before they were written", len(batch))
        if db_engine.current_engine() is engine and engine is not None:
            self._refresh()
        return written

    def _run(self) -> None:
        idle = 0
        while not self._stopping.wait(self.interval):
            try:
                idle = 0 if self.flush() else idle + 1
            except Exception:  # noqa: BLE001 - the next pass retries
                LOG.exception("Writing agent heartbeats failed; retrying in %s s", self.interval)
            with self._lock:
                if idle >= _FLUSHER_IDLE_PASSES and not self._pending:
                    self._thread = None
                    return
        with self._lock:
            self._thread = None

    def stop(self) -> None:
        """Stop the writer thread and write what is pending."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(10.0)
        self.flush()
        self._stopping.clear()


def authenticate_heartbeat(recorder: HeartbeatRecorder, node_uuid: Any, agent_token: Any) -> dict[str, Any]:
    """The node's cache entry if ``agent_token`` is its token; else log and raise InvalidAgentToken."""
    key = node_uuid.lower() if isinstance(node_uuid, str) and uuidutils.is_uuid_like(node_uuid) else None
    token_hash = hash_token(agent_token) if isinstance(agent_token, str) and agent_token else None
    entry = recorder.lookup(key, token_hash) if key else None
    if entry is None:
        LOG.warning(
            "Rejected heartbeat for unknown node %r: no such node, so no valid agent token", node_uuid
        )
        raise exception.InvalidAgentToken(node=node_uuid)
    why = tokens.refusal(entry["uuid"], entry["agent_token_hash"], agent_token)
    if why is not None:
        LOG.warning("Rejected heartbeat from node %s: %s", entry["uuid"], why)
        raise exception.InvalidAgentToken(node=entry["uuid"], reason=why)
    return entry


def handle_heartbeat(
    ctxt: dict, host: str, recorder: HeartbeatRecorder, node_uuid: str, agent_token: str, status: dict
) -> None:
    """Record that the node's agent is alive; clear a heartbeat fault; drive the deploy hook.

    The token is checked against ``recorder``'s cache (read again on a miss), the time is written
    with the other heartbeats within HEARTBEAT_FLUSH_INTERVAL, and the node is locked (by ``host``)
    only when a hook must run (deploy, clean, inspect wait) or the heartbeat fault must be cleared.
    The hook is queued on a conductor worker with the lock held; this returns at once.
    """
    entry = authenticate_heartbeat(recorder, node_uuid, agent_token)
    recorder.record(entry)
    if entry["fault"] != HEARTBEAT_FAULT and entry["provision_state"] not in states.AGENT_WAIT_STATES:
        return
    uuid = entry["uuid"]
    try:
        # One attempt: a locked node is busy (its worker runs or waits), and the next heartbeat comes
        # anyway; waiting for the lock here would hold one of the topic's few threads.
        with task_manager.acquire(
            ctxt, uuid, purpose="agent heartbeat", host=host, load_driver=False, retry_attempts=1
        ) as task:
            waits.heartbeat_taken(uuid)
            if task.node.fault == HEARTBEAT_FAULT:
                values: dict[str, Any] = {"fault": None}
                if (task.node.last_error or "").startswith(_heartbeat_error_prefix(uuid)):
                    values["last_error"] = None
                task.update_node(values)
                LOG.info("Node %s: the agent heartbeats again; fault cleared", uuid)
            if task.node.provision_state in states.AGENT_WAIT_STATES:
                task.driver = driver_factory.build_driver_for_task(task)
                task.agent_token = agent_token  # verified above; the hooks send it to the agent
                # The hook (the next deploy or clean step) runs on a worker, lock held, so this
                # thread is free for the next heartbeat at once.
                task.queue_after(
                    task.driver.deploy.heartbeat, task, status if isinstance(status, dict) else {}
                )
    except exception.NodeLocked as exc:
        waits.heartbeat_skipped(uuid)
        LOG.info("Heartbeat of node %s recorded; its handling waits for the next one: %s", uuid, exc)
    except exception.NodeNotFound:
        recorder.invalidate([uuid])
        LOG.info("Heartbeat of node %s ignored: the node was deleted meanwhile", uuid)


class HeartbeatEndpoint:
    """What the heartbeat topic serves: ``heartbeat`` only, handled by the conductor's manager.

    Nothing else can be called there, so the topic's few worker threads (and its queue) carry
    heartbeats and nothing that must wait for them.
    """

    target = messaging.Target(version="1.0")

    def __init__(self, manager: AgentEndpoints) -> None:
        self._manager = manager

    def heartbeat(self, ctxt: dict, node_uuid: str, agent_token: str, status: dict) -> None:
        """The manager's heartbeat (token checked, time batched, hooks run)."""
        return self._manager.heartbeat(ctxt, node_uuid, agent_token, status)


def _heartbeat_error_prefix(node_uuid: str) -> str:
    return f"The agent of node {node_uuid} has not sent a heartbeat"


def heartbeat_error(node_uuid: str, timeout_s: int, last: datetime.datetime | None) -> str:
    """The last_error of a node flagged for missing heartbeats."""
    when = last.isoformat() if last is not None else "never"
    return (
        f"{_heartbeat_error_prefix(node_uuid)} for more than {timeout_s} s (last: {when}); "
        "check that kiln-agent runs on the node and reaches the message bus."
    )
