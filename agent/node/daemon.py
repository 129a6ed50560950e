"""kiln-agent's lifecycle: inventory, lookup, report, serve, heartbeat, watch, stop."""

from __future__ import annotations

import copy
import os
import re
import threading
import time
from collections.abc import Callable
from functools import partial

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging

from agent.common import exception, rpc, upgrade_levels
from agent.common.macs import lookup_macs
from agent.common.notify import Notifier, WatchdogPetter
from agent.common.opts import steps as steps_opts
from agent.node import changes as changes_mod
from agent.node.backoff import Backoff, GaveUp, Stopped, retry
from agent.node.cmdline import BootParams
from agent.node.conductor_client import ConductorClient
from agent.node.credentials import Credentials, TokenStore
from agent.node.endpoints import AgentEndpoint
from agent.node.heartbeat import Heartbeater
from agent.node.lldp import LLDPListener
from agent.node.steps.context import StepContext
from agent.node.steps.runner import StepRunner
from agent.node.watch import HardwareWatcher

LOG = logging.getLogger(__name__)
#: Seconds ``shutdown()`` may take (systemd and operators expect a prompt exit on SIGTERM).
STOP_WITHIN = 4.0
_TOPIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def conductor_topic(config: dict, key: str, default: str | None) -> str | None:
    """The topic the conductor named as ``config[key]`` at lookup; ``default`` when absent or no topic."""
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, str) and _TOPIC_RE.match(value):
        return value
    LOG.warning(
        "The conductor's lookup answer has %s=%r, which is no RPC topic; using %s", key, value, default
    )
    return default


def agent_version() -> str:
    """The installed kiln version."""
    try:
        from importlib.metadata import version

        return version("kiln")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"


def lldp_changes(old: dict | None, new: dict) -> dict:
    """What the LLDP sections of two inventories differ in, in ``diff_inventory``'s shape (per link)."""
    before = (old or {}).get("lldp") if isinstance(old, dict) else None
    before = before if isinstance(before, dict) else {}
    after = new.get("lldp") if isinstance(new.get("lldp"), dict) else {}
    out: dict[str, dict] = {"added": {}, "removed": {}, "changed": {}}
    added = [
        {"name": i, **after[i]} for i in sorted(after.keys() - before.keys()) if isinstance(after[i], dict)
    ]
    removed = [
        {"name": i, **before[i]} for i in sorted(before.keys() - after.keys()) if isinstance(before[i], dict)
    ]
    changed = {}
    for name in sorted(before.keys() & after.keys()):
        a, b = before[name], after[name]
        if isinstance(a, dict) and isinstance(b, dict) and a.get("raw") != b.get("raw"):
            changed[name] = changes_mod.field_changes(a, b)
    if added:
        out["added"]["lldp"] = added
    if removed:
        out["removed"]["lldp"] = removed
    if changed:
        out["changed"]["lldp"] = changed
    return out


class NoToken(Exception):
    """The conductor issued no token (it hands one out once) and none is stored here."""


class WrongNode(Exception):
    """The conductor's lookup found another node than the one the kernel command line names."""


class Agent:
    """One node's agent. ``start()`` returns at once; ``run()`` blocks until ``request_stop()``."""

    def __init__(
        self,
        conf: cfg.ConfigOpts = cfg.CONF,
        *,
        root: str | None = None,
        state_dir: str | None = None,
        collector: Callable[[], dict] | None = None,
        transport: messaging.Transport | None = None,
        transport_url: str | None = None,
        boot: BootParams | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        opts = conf.agent
        for (
            opt
        ) in steps_opts.OPTS:  # oslo.config checks a value on first use: a bad one fails now, not mid-deploy
            getattr(opts, opt.dest)
        self.conf = conf
        self.root = root or opts.root or conf.inventory.root
        own_collector = collector is None
        # A captured tree or a caller's collector is not this machine: GPU steps must not act on ours.
        self.live = own_collector and os.path.realpath(self.root) == "/"
        if collector is None:
            from agent.inventory.collect import collect

            collector = partial(
                collect,
                self.root,
                use_nvml=conf.inventory.use_nvml,
                include_md=conf.inventory.include_md_devices,
            )
        self._collector = collector
        self._collect_lock = threading.Lock()
        # Held while start-up starts the RPC server, heartbeat and watcher; shutdown takes it after
        # setting stop_event, so each of them is either stopped by shutdown or never started.
        self._start_lock = threading.Lock()
        self.store = TokenStore(state_dir or opts.state_dir)
        self.backoff = Backoff(opts.backoff_initial, opts.backoff_factor, opts.backoff_max)
        self.boot = boot or BootParams(source="none")
        self._own_transport = transport is None
        self.transport = transport or rpc.get_transport(conf, url=transport_url)
        self.conductor = ConductorClient(
            self.transport,
            topic=opts.conductor_topic,
            version_cap=upgrade_levels.version_cap("conductor", conf),
            retry=opts.rpc_send_retries,
        )
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.exit_code = 0
        self.creds: Credentials | None = None
        self.config: dict = {}
        self.heartbeat_topic: str | None = None
        self.last_reported: dict | None = None
        self.reports_acked = 0
        self._started_at = time.monotonic()
        self._changed = threading.Event()
        self._server = None
        self._heartbeater: Heartbeater | None = None
        self._watcher: HardwareWatcher | None = None
        self._watchdog = WatchdogPetter(self.notifier, alive=self.healthy)
        self._threads: list[threading.Thread] = []
        self.runner: StepRunner | None = None
        self.lldp = self._lldp_listener(own_collector)

    def _lldp_listener(self, own_collector: bool) -> LLDPListener | None:
        """The LLDP listener, when [agent]lldp is on and the links it hears belong to this inventory.

        A captured tree or a caller's collector describes another machine: the host's own links
        would name the wrong switch ports, so only [agent]lldp_interfaces chosen by hand apply then.
        """
        opts = self.conf.agent
        if not opts.lldp:
            return None
        chosen = list(opts.lldp_interfaces or [])
        if not chosen and not (own_collector and os.path.realpath(self.root) == "/"):
            LOG.info(
                "LLDP: not listening (the inventory root %s is not this host; set [agent]lldp_interfaces)",
                self.root,
            )
            return None
        return LLDPListener(chosen or None, on_change=lambda ifname: self.hardware_changed(f"lldp {ifname}"))

    # -- inventory ------------------------------------------------------------------------
    def collect(self) -> dict:
        """Collect the inventory now (one collection at a time)."""
        with self._collect_lock:
            inventory = self._collector()
        return self.lldp.merge(inventory) if self.lldp is not None else inventory

    # -- lookup and token -----------------------------------------------------------------
    def _lookup_once(self, inventory: dict) -> Credentials:
        system = inventory.get("system") or {}
        macs = lookup_macs(inventory)
        answer = self.conductor.lookup(
            {},
            macs,
            system.get("uuid"),
            self.boot.bootif or system.get("pxe_interface"),  # BOOTIF: the NIC the firmware booted from
            timeout=self.conf.agent.lookup_timeout,
        )
        node = (answer or {}).get("node") or {}
        uuid = node.get("uuid")
        if not uuid:
            raise RuntimeError(f"the conductor's lookup answer names no node: {answer!r}")
        if self.boot.node_uuid and uuid != self.boot.node_uuid:
            raise WrongNode(
                f"the conductor's lookup (MACs {', '.join(macs) or 'none'}) found node {uuid}, but this "
                f"agent was booted for node {self.boot.node_uuid} (kiln.node_uuid in {self.boot.source}); "
                "check the nodes' ports for a MAC that moved"
            )
        self.config = answer.get("config") or {}
        # Where heartbeats go (None: the conductors' own topic, as a conductor naming none expects).
        self.heartbeat_topic = conductor_topic(self.config, "heartbeat_topic", None)
        token = answer.get("agent_token")
        if token:
            creds = Credentials(uuid, token)
            self.store.save(creds)
        else:
            stored = self.store.load()
            if stored is None or stored.node_uuid != uuid:
                raise NoToken(
                    f"the conductor found node {uuid} but issued no agent token (it hands one out once) "
                    f"and {self.store.path} holds none for it; reset the node's agent token on the conductor"
                )
            creds = stored
        LOG.info("Lookup found node %s (%s), MACs %s", uuid, node.get("name"), ", ".join(macs) or "none")
        return creds

    def _register(self, inventory: dict) -> Credentials:
        self.notifier.status("looking up this node on the conductor")

        def attempt() -> tuple[Credentials | None, WrongNode | None]:
            try:
                return self._lookup_once(inventory), None
            except WrongNode as exc:  # asking again gives the same answer: stop retrying
                return None, exc

        creds, wrong = retry(
            attempt,
            what="lookup",
            stop=self.stop_event,
            backoff=self.backoff,
            attempts=self.conf.agent.lookup_max_attempts,
        )
        if wrong is not None:
            raise wrong
        self.creds = creds
        return self.creds

    def token(self) -> str | None:
        """The current agent token."""
        return self.creds.agent_token if self.creds else None

    # -- reports --------------------------------------------------------------------------
    def report(self, inventory: dict, changes: dict | None = None) -> dict:
        """report_inventory until the conductor acknowledges it; re-lookup if the token is refused."""

        def attempt() -> dict:
            creds = self.creds or self._lookup_once(inventory)
            self.creds = creds
            try:
                return self.conductor.report_inventory(
                    {},
                    creds.node_uuid,
                    creds.agent_token,
                    inventory,
                    changes,
                    timeout=self.conf.agent.report_timeout,
                )
            except exception.InvalidAgentToken:
                LOG.error(
                    "The conductor refused the agent token of node %s; looking up again", creds.node_uuid
                )
                self.store.clear()
                self.creds = None
                raise

        answer = retry(
            attempt,
            what="report_inventory",
            stop=self.stop_event,
            backoff=self.backoff,
            attempts=self.conf.agent.report_max_attempts,
        )
        self.last_reported = copy.deepcopy(inventory)
        self.reports_acked += 1
        LOG.info("Inventory report acknowledged (%s)", changes_mod.summary(changes) if changes else "full")
        return answer or {}

    def _report_changes(self) -> None:
        while not self.stop_event.is_set():
            self._changed.wait(0.5)
            if not self._changed.is_set():
                continue
            self._changed.clear()
            try:
                inventory = self.collect()
                diff = changes_mod.diff_inventory(self.last_reported, inventory)
                for kind, groups in lldp_changes(self.last_reported, inventory).items():
                    diff[kind].update(groups)
                if not changes_mod.has_changes(diff):
                    continue
                LOG.info("Hardware changed: %s", changes_mod.summary(diff))
                self.notifier.status(f"reporting hardware change: {changes_mod.summary(diff)}"[:200])
                self.report(inventory, diff)
                self.notifier.status(f"serving node {self.creds.node_uuid if self.creds else '?'}")
            except (Stopped, GaveUp) as exc:
                LOG.warning("Change report not sent: %s", exc)
            except Exception:  # noqa: BLE001 - keep watching after a failed re-collect
                LOG.exception("Reporting a hardware change failed")

    def hardware_changed(self, reason: str) -> None:
        """Schedule a re-collect and report (called by the watcher)."""
        LOG.debug("Hardware change trigger: %s", reason)
        self._changed.set()

    # -- heartbeat ------------------------------------------------------------------------
    def _beat(self) -> None:
        creds = self.creds
        if creds is None:
            return
        status = {
            "version": agent_version(),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
            "reports_acked": self.reports_acked,
            "watch": self._watcher.source if self._watcher else None,
        }
        self.conductor.heartbeat({}, creds.node_uuid, creds.agent_token, status, topic=self.heartbeat_topic)

    def healthy(self) -> bool:
        """Say whether the agent works (for the systemd watchdog)."""
        if not self.ready.is_set():
            return not self.stop_event.is_set()
        return self._heartbeater is not None and self._heartbeater.alive()

    # -- lifecycle ------------------------------------------------------------------------
    def _report_step(self, node_uuid: str, step: str, result: dict) -> None:
        """Send one step result to the conductors with the current token (the runner retries)."""
        token = self.token()
        if token is None:  # between a refused token and the new lookup: try again later
            raise RuntimeError(f"no agent token for node {node_uuid} yet; step {step} result held back")
        self.conductor.step_result({}, node_uuid, token, step, result)

    def _serve(self, creds: Credentials) -> None:
        ctx = StepContext(self.conf, self.collect, creds.node_uuid, self.stop_event, live=self.live)
        self.runner = StepRunner(
            ctx,
            report=partial(self._report_step, creds.node_uuid),
            backoff=self.backoff,
            keep=self.conf.agent.step_results_kept,
        )
        endpoint = AgentEndpoint(
            creds.node_uuid, self.token, self.collect, version=agent_version(), runner=self.runner
        )
        topic = conductor_topic(self.config, "agent_topic", rpc.AGENT_TOPIC)
        self._server = rpc.get_server(self.transport, topic, creds.node_uuid, [endpoint])
        self._server.start()
        LOG.info("Serving RPC on topic %s, server %s", topic, creds.node_uuid)

    def _wait_for_lldp(self) -> None:
        """Listen up to [agent]lldp_wait s for LLDP on every link before the first report."""
        wait = self.conf.agent.lldp_wait
        if self.lldp is None or not wait:
            return
        self.notifier.status(f"listening for LLDP (up to {wait} s)")
        silent = self.lldp.wait_heard(wait, self.stop_event)
        if silent:
            LOG.warning("LLDP: nothing heard on %s within %s s ([agent]lldp_wait)", ", ".join(silent), wait)
        else:
            LOG.info("LLDP heard on every link")

    def _lifecycle(self) -> None:
        try:
            self.notifier.status("collecting the inventory")
            self._wait_for_lldp()
            inventory = self.collect()
            creds = self._register(inventory)
            self.notifier.status(f"reporting the inventory of node {creds.node_uuid}")
            self.report(inventory)
            with self._start_lock:
                if self.stop_event.is_set():
                    raise Stopped("stopping before serving")
                self._serve(self.creds or creds)
                interval = float(self.config.get("heartbeat_interval") or self.conf.agent.heartbeat_interval)
                self._heartbeater = Heartbeater(self._beat, interval, self.conf.agent.heartbeat_jitter)
                self._heartbeater.start()
                if self.conf.agent.watch:
                    self._watcher = HardwareWatcher(
                        self.root,
                        self.hardware_changed,
                        self.conf.agent.watch_interval,
                        self.conf.agent.watch_settle,
                    )
                    self._watcher.start()
            if self.conf.agent.watch or self.lldp is not None:
                self._spawn(self._report_changes, "change-reporter")
            self.ready.set()
            self.notifier.ready(f"serving node {creds.node_uuid}")
        except Stopped:
            LOG.info("Stopped during start-up")
        except Exception as exc:  # noqa: BLE001 - any start-up failure ends the agent with an error
            LOG.error("kiln-agent could not start: %s", exc, exc_info=not isinstance(exc, GaveUp))
            self.exit_code = 1
            self.stop_event.set()

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def start(self) -> None:
        """Start the agent in the background."""
        self._watchdog.start()
        if self.lldp is not None:
            self.lldp.start()  # in its own thread: frames are merged in whenever they arrive
        self._spawn(self._lifecycle, "lifecycle")

    def request_stop(self) -> None:
        """Ask the agent to stop (safe from a signal handler)."""
        self.stop_event.set()

    def shutdown(self) -> None:
        """Stop heartbeat, RPC server and watcher; close the transport (within STOP_WITHIN s)."""
        started = time.monotonic()
        self.stop_event.set()
        self.notifier.stopping()
        with self._start_lock:  # start-up either finished starting things (stopped below) or never will
            pass
        running = self.runner.running() if self.runner is not None else None
        if running:
            LOG.warning("Stopping while step command %s runs: its result may not be delivered", running)
        # Heartbeat, watcher, LLDP listener and RPC server wind down side by side: one after the
        # other, their waits added up to most of the 5 s a stop may take.
        stops = [part.stop for part in (self._heartbeater, self._watcher, self.lldp) if part is not None]
        if self._server is not None:
            server = self._server
            stops.append(lambda: rpc.stop_server(server, self.conf.agent.rpc_stop_timeout))
        stoppers = [threading.Thread(target=stop, name="agent-stop", daemon=True) for stop in stops]
        for stopper in stoppers:
            stopper.start()
        deadline = started + max(2.0, self.conf.agent.rpc_stop_timeout) + 0.5
        for stopper in stoppers:
            stopper.join(max(0.0, deadline - time.monotonic()))
        self._watchdog.stop()
        for t in self._threads:
            t.join(max(0.0, min(0.5, deadline - time.monotonic())))
        if self._own_transport:
            # Closing the broker connections takes ~2 s over RabbitMQ; past the stop budget the
            # process exit closes them instead.
            closer = threading.Thread(target=self.transport.cleanup, name="transport-cleanup", daemon=True)
            closer.start()
            closer.join(max(0.5, started + STOP_WITHIN - time.monotonic()))
        LOG.info("kiln-agent stopped")

    def run(self) -> int:
        """Start, wait until asked to stop, shut down; return the exit code."""
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            self.shutdown()
        return self.exit_code
