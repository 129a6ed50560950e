"""The agent's step registry and runner: one step at a time, in the background, results kept and reported."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from oslo_log import log as logging

from agent.node.backoff import Backoff, Stopped, retry
from agent.node.steps import (
    burnin,
    configdrive,
    erase,
    gpu_memory,
    gpus,
    images,
    logs,
    power,
    rescue,
    rootdev,
)
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

LOG = logging.getLogger(__name__)

StepFn = Callable[[StepContext, dict], dict]
Reporter = Callable[[str, dict], None]


def get_root_device(ctx: StepContext, args: dict) -> dict:
    """Name the disk the root device hints (or the default rule) select."""
    disk = rootdev.select_root_device(ctx.disks(), args.get("root_device"))
    return {"root_device": disk["name"], "size": disk.get("size"), "serial": disk.get("serial")}


STEPS: dict[str, StepFn] = {
    "write_image": images.write_image,
    "write_configdrive": configdrive.write_configdrive,
    "erase_devices_metadata": erase.erase_devices_metadata,
    "erase_devices": erase.erase_devices,
    "power_off": power.power_off,
    "reboot": power.reboot,
    "collect_logs": logs.collect_logs,
    "get_root_device": get_root_device,
    "verify_gpus": gpus.verify_gpus,
    "burnin_gpus": burnin.burnin_gpus,
    "clear_gpu_memory": gpu_memory.clear_gpu_memory,
    "finalize_rescue": rescue.finalize_rescue,
}


class AgentBusy(Exception):
    """Another step is still running."""


class UnknownStep(Exception):
    """No step of that name."""


class StepRunner:
    """Runs steps in a background thread and reports each result to the conductor until acknowledged."""

    def __init__(
        self,
        context: StepContext,
        report: Reporter | None = None,
        steps: dict[str, StepFn] | None = None,
        backoff: Backoff | None = None,
        keep: int = 100,
    ) -> None:
        self.context = context
        self.report = report
        self.steps = dict(STEPS if steps is None else steps)
        self.backoff = backoff or Backoff(1.0, 2.0, 30.0)
        self.keep = keep
        self._lock = threading.Lock()
        self._results: OrderedDict[str, dict] = OrderedDict()
        self._running: tuple[str, str] | None = None
        self._threads: list[threading.Thread] = []

    def start(self, step: str, args: dict | None = None) -> dict:
        """Start ``step`` in the background; returns {"command_id", "step", "status": "running"}."""
        fn = self.steps.get(step)
        if fn is None:
            raise UnknownStep(f"no step {step!r}; known steps: {', '.join(sorted(self.steps))}")
        if args is not None and not isinstance(args, dict):
            raise StepError(f"step {step!r}: args must be an object, got {type(args).__name__}")
        command_id = str(uuid.uuid4())
        with self._lock:
            if self._running is not None:
                raise AgentBusy(f"step {self._running[1]} (command {self._running[0]}) is still running")
            self._running = (command_id, step)
            self._results[command_id] = {"command_id": command_id, "step": step, "status": "running"}
        thread = threading.Thread(
            target=self._run, args=(command_id, step, fn, dict(args or {})), name=f"step-{step}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return {"command_id": command_id, "step": step, "status": "running"}

    def _run(self, command_id: str, step: str, fn: StepFn, args: dict) -> None:
        started = time.monotonic()
        try:
            output = fn(self.context, args) or {}
            result = {"command_id": command_id, "status": "succeeded", "result": output, "error": None}
            LOG.info("Step %s (%s) succeeded in %.1f s", step, command_id, time.monotonic() - started)
        except StepError as exc:
            result = {
                "command_id": command_id,
                "status": "failed",
                "result": exc.details,
                "error": f"{step}: {exc}",
            }
            LOG.error("Step %s (%s) failed: %s", step, command_id, exc)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never lost
            LOG.exception("Step %s (%s) failed unexpectedly", step, command_id)
            result = {
                "command_id": command_id,
                "status": "failed",
                "result": {},
                "error": f"{step}: unexpected {type(exc).__name__}: {exc}",
            }
        result["step"] = step
        result["duration_s"] = round(time.monotonic() - started, 3)
        with self._lock:
            self._results[command_id] = result
            self._results.move_to_end(command_id)
            while len(self._results) > self.keep:
                self._results.popitem(last=False)
            self._running = None
        self._send(step, result)

    def _send(self, step: str, result: dict) -> None:
        if self.report is None:
            return
        try:
            retry(
                lambda: self.report(step, result),
                what=f"step_result {step}",
                stop=self.context.stop,
                backoff=self.backoff,
                attempts=0,
            )
        except Stopped:
            LOG.warning("Agent stopping: result of step %s (%s) not delivered", step, result["command_id"])

    def status(self, command_id: str) -> dict:
        """The result of ``command_id``, or {"status": "running"} while it runs."""
        with self._lock:
            result = self._results.get(command_id)
        if result is None:
            raise UnknownStep(f"no command {command_id!r} (unknown, or its result is no longer kept)")
        if result["status"] == "running":
            return {"command_id": command_id, "step": result["step"], "status": "running"}
        return dict(result)

    def running(self) -> str | None:
        """The command id of the step running now, if any."""
        with self._lock:
            return self._running[0] if self._running else None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the step threads (tests, shutdown)."""
        for t in list(self._threads):
            t.join(timeout)
