"""kiln-demo in one process: a conductor, this host's agent and simulated nodes, then the fleet table."""

from __future__ import annotations

import os
import queue
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from oslo_config import cfg

from agent.common import config, rpc
from agent.demo import fleet, trees
from agent.demo.events import Event

CONF = cfg.CONF
MEMORY_URL = "kombu+memory:////"
THIS_HOST = "this host"


@dataclass
class DemoOptions:
    """What kiln-demo was asked to do."""

    transport_url: str = MEMORY_URL
    database_url: str | None = None
    fixtures: str | None = None
    trees: list[str] | None = None
    host: bool = True
    timeout: float = 30.0
    deploy: bool = False
    keep: bool = False
    gate: bool = True


@dataclass
class SimNode:
    """One node of the demo: where its agent reads, and what the conductor made of it."""

    label: str
    root: str
    inventory: dict
    macs: list[str]
    system_uuid: str | None
    use_nvml: bool = False
    agent: Any = None
    node_uuid: str | None = None
    events: set[str] = field(default_factory=set)

    def done(self) -> bool:
        """Say whether the node reported its inventory and heartbeat."""
        return {"report", "heartbeat"} <= self.events

    def failed(self) -> bool:
        """Say whether its agent gave up."""
        return self.agent is not None and self.agent.exit_code != 0


class _Overrides:
    """CONF overrides that are all undone at the end of the run."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf
        self.names: list[tuple[str, str | None]] = []

    def set(self, name: str, value: Any, group: str | None = None) -> None:
        """Override one option."""
        self.conf.set_override(name, value, group=group)
        self.names.append((name, group))

    def undo(self) -> None:
        """Clear every override made here."""
        for name, group in reversed(self.names):
            self.conf.clear_override(name, group=group)
        self.names.clear()


class Demo:
    """One run of kiln-demo; ``run()`` returns the exit status."""

    def __init__(self, options: DemoOptions, out: IO[str] | None = None) -> None:
        self.options = options
        self.out = out or sys.stdout
        self.nodes: list[SimNode] = []
        self.notes: list[str] = []
        self.events: queue.Queue[Event] = queue.Queue()
        self.started = time.monotonic()
        self.rows: list[fleet.FleetRow] = []
        self._by_uuid: dict[str, SimNode] = {}
        self.tmp = ""
        self.transport: Any = None
        self.overrides: _Overrides | None = None

    # -- output ---------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        """Print one line of the demo's output."""
        print(text, file=self.out, flush=True)

    def stamp(self) -> str:
        """Seconds since the demo started, as a prefix for its lines."""
        return f"[{time.monotonic() - self.started:5.2f}s]"

    # -- set-up ---------------------------------------------------------------------------
    def plan_nodes(self) -> list[SimNode]:
        """This host and the fixture trees, each collected once; duplicates of a node are skipped."""
        from agent.common.macs import lookup_macs
        from agent.inventory.collect import collect

        wanted: list[tuple[str, str, bool]] = []
        if self.options.host:
            wanted.append((THIS_HOST, "/", bool(CONF.inventory.use_nvml)))
        found, notes = trees.find_trees(self.options.fixtures, self.options.trees)
        self.notes.extend(notes)
        wanted.extend((t.name, t.root, False) for t in found)
        seen_macs: dict[str, str] = {}
        seen_uuids: dict[str, str] = {}
        for label, root, use_nvml in wanted:
            try:
                inventory = collect(root, use_nvml=use_nvml)
            except (OSError, ValueError) as exc:
                self.notes.append(f"{label}: cannot inventory {root}: {exc}; skipped")
                continue
            macs = lookup_macs(inventory)
            system = inventory.get("system") if isinstance(inventory.get("system"), dict) else {}
            sys_uuid = (system.get("uuid") or "").lower() or None
            if not macs and not sys_uuid:
                self.notes.append(f"{label}: no MAC address and no system UUID to look it up by; skipped")
                continue
            same = [seen_macs[m] for m in macs if m in seen_macs] or (
                [seen_uuids[sys_uuid]] if sys_uuid in seen_uuids else []
            )
            if same:
                self.notes.append(
                    f"{label}: the same machine as {same[0]} (same MAC or system UUID); skipped"
                )
                continue
            seen_macs.update(dict.fromkeys(macs, label))
            if sys_uuid:
                seen_uuids[sys_uuid] = label
            self.nodes.append(SimNode(label, root, inventory, macs, sys_uuid, use_nvml))
        return self.nodes

    def _configure(self, overrides: _Overrides, tmp: str) -> None:
        overrides.set("state_path", tmp)
        overrides.set("connection", self.options.database_url or f"sqlite:///{tmp}/kiln.sqlite", "database")
        overrides.set("host", f"kiln-demo-{socket.gethostname()}", "conductor")
        overrides.set("enable_discovery", True, "conductor")
        enabled = list(CONF.conductor.enabled_deploy_interfaces)
        overrides.set(
            "enabled_deploy_interfaces", enabled + ["direct"] * ("direct" not in enabled), "conductor"
        )
        overrides.set("heartbeat_interval", 1, "conductor")
        overrides.set("agent_heartbeat_interval", 2, "conductor")
        overrides.set("watch", False, "agent")
        overrides.set("backoff_initial", 0.2, "agent")
        overrides.set("backoff_max", 2.0, "agent")
        overrides.set("lookup_timeout", 5, "agent")
        overrides.set("report_timeout", 10, "agent")
        overrides.set("rpc_stop_timeout", 1.0, "agent")

    # -- the run --------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, wait for every node, print the fleet, stop everything."""
        config.register_opts(CONF)
        overrides = _Overrides(CONF)
        tmp = tempfile.TemporaryDirectory(prefix="kiln-demo-")
        self.tmp, self.overrides = tmp.name, overrides
        service = transport = None
        try:
            self._configure(overrides, tmp.name)
            self.plan_nodes()
            for note in self.notes:
                self.say(f"note: {note}")
            if not self.nodes:
                self.say("kiln-demo: nothing to run: no node could be inventoried (see the notes above)")
                return 2
            service, transport = self._start_conductor()
            self.transport = transport
            self._start_agents(transport, tmp.name)
            ok = self._wait()
            self._print_fleet()
            if ok and self.options.gate:
                ok = self._gate()
            if ok and self.options.deploy:
                ok = self._deploy()
            return 0 if ok else 1
        finally:
            self._stop(service, transport)
            overrides.undo()
            tmp.cleanup()

    def _start_conductor(self):
        from agent.conductor.service import ConductorService
        from agent.db import api as db_api
        from agent.db import migration
        from agent.demo.events import DemoConductor

        db_api.configure(CONF.database.connection)
        migration.upgrade()
        transport = rpc.get_transport(CONF, url=self.options.transport_url)
        service = ConductorService(CONF, transport=transport)
        service.manager = DemoConductor(service.host, self.events)
        service.start()
        db_url = db_api.get_engine().url.render_as_string(hide_password=True)
        where = self.options.transport_url.split("@")[-1]
        self.say(f"{self.stamp()} conductor {service.host} up: bus {where}, database {db_url}")
        return service, transport

    def _start_agents(self, transport, tmp: str) -> None:
        from agent.inventory.collect import collect
        from agent.node.daemon import Agent

        for node in self.nodes:
            state_dir = os.path.join(tmp, "agents", node.label.replace(" ", "-"))
            collector = partial(collect, node.root, use_nvml=node.use_nvml)
            node.agent = Agent(
                CONF, root=node.root, state_dir=state_dir, collector=collector, transport=transport
            )
            node.agent.start()
        names = ", ".join(n.label for n in self.nodes)
        self.say(f"{self.stamp()} started {len(self.nodes)} agents: {names}")

    def _owner(self, event: Event) -> SimNode | None:
        if event.node_uuid in self._by_uuid:
            return self._by_uuid[event.node_uuid]
        if event.kind != "lookup":
            return None
        sys_uuid = (event.system_uuid or "").lower() or None
        for node in self.nodes:
            if (sys_uuid and sys_uuid == node.system_uuid) or set(event.macs) & set(node.macs):
                node.node_uuid = event.node_uuid
                self._by_uuid[event.node_uuid] = node
                return node
        return None

    def _show(self, event: Event) -> None:
        node = self._owner(event)
        if node is None:
            return
        node.events.add(event.kind)
        who = f"{node.label:<12}"
        if event.kind == "lookup":
            token = "agent token issued" if event.token_issued else "no new token (issued before)"
            self.say(f"{self.stamp()} {who} looked up: node {event.node_uuid} ({event.state}), {token}")
        elif event.kind == "report":
            traits = ", ".join(event.traits) or "none"
            self.say(f"{self.stamp()} {who} inventory stored, traits: {traits}")
        elif event.kind == "heartbeat":
            self.say(f"{self.stamp()} {who} first heartbeat")

    def _wait(self) -> bool:
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            if all(n.done() or n.failed() for n in self.nodes):
                break
            try:
                self._show(self.events.get(timeout=0.1))
            except queue.Empty:
                pass
        while True:  # what arrived meanwhile
            try:
                self._show(self.events.get_nowait())
            except queue.Empty:
                break
        missing = [n for n in self.nodes if not n.done()]
        for node in missing:
            why = "its agent gave up (see the log above)" if node.failed() else "no answer yet"
            seen = ", ".join(sorted(node.events)) or "nothing"
            self.say(
                f"kiln-demo: {node.label} ({node.root}) did not report within {self.options.timeout:.0f} s: "
                f"{why}; the conductor saw {seen}"
            )
        return not missing

    def _print_fleet(self) -> None:
        from agent.db import api as db_api

        rows = []
        for node in self.nodes:
            if node.node_uuid is None:
                continue
            db_node = db_api.get_node(node.node_uuid)
            name = f"{db_node.name} ({node.label})" if db_node.name else node.label
            inventory = db_api.get_node_inventory(db_node.id)
            rows.append(
                fleet.summarise(name, db_node.provision_state, inventory, db_api.get_node_traits(db_node.id))
            )
        self.rows = rows
        reported = sum(1 for n in self.nodes if n.done())
        self.say()
        took = time.monotonic() - self.started
        self.say(f"Fleet: {reported} of {len(self.nodes)} nodes reported in {took:.1f} s")
        self.say(fleet.render(rows))
        self.say()

    def _gate(self) -> bool:
        from agent.demo import gate

        return gate.run(self)

    def _deploy(self) -> bool:
        from agent.demo import deploy

        return deploy.run(self)

    def _stop(self, service, transport) -> None:
        from agent.db import api as db_api
        from agent.db import engine as db_engine

        agents = [n.agent for n in self.nodes if n.agent is not None]
        for agent in agents:
            agent.request_stop()
        stoppers = [threading.Thread(target=a.shutdown, name="demo-agent-stop", daemon=True) for a in agents]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(10)
        if service is not None:
            service.stop()
            if self.options.database_url and not self.options.keep:
                for node in self.nodes:
                    if node.node_uuid:
                        try:
                            db_api.destroy_node(node.node_uuid)
                        except Exception as exc:  # noqa: BLE001 - say so and go on
                            self.say(f"note: could not remove demo node {node.node_uuid}: {exc}")
        if transport is not None:
            transport.cleanup()
        if service is not None:
            db_engine.dispose()
