"""power_off and reboot from inside the node, through /proc/sysrq-trigger when allowed."""

from __future__ import annotations

import os
import threading

from oslo_log import log as logging

from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

LOG = logging.getLogger(__name__)
SYSRQ = "/proc/sysrq-trigger"
ACTIONS = {"power_off": "o", "reboot": "b"}


def _act(ctx: StepContext, step: str, args: dict) -> dict:
    delay = args.get("delay_s", 2.0)
    if not isinstance(delay, int | float) or not 0 <= delay <= 300:
        raise StepError(f"{step}: delay_s must be a number of seconds in 0..300, got {delay!r}")
    if not ctx.opts.allow_power_actions:
        LOG.info("%s requested; [agent]allow_power_actions is false, so nothing is done", step)
        return {"action": step, "performed": False, "simulated": True}
    if not os.path.exists(SYSRQ):
        raise StepError(f"{step}: {SYSRQ} does not exist; is /proc mounted?")

    def fire() -> None:
        os.sync()  # the kernel stops at once: flush what the steps wrote first
        with open(SYSRQ, "w") as f:
            f.write(ACTIONS[step])

    # The result is sent before the kernel acts, so the conductor learns the step succeeded.
    timer = threading.Timer(float(delay), fire)
    timer.daemon = True
    timer.start()
    return {"action": step, "performed": True, "simulated": False, "delay_s": delay}


def power_off(ctx: StepContext, args: dict) -> dict:
    """Power the node off (sysrq 'o') after ``delay_s``; only reports when power actions are off."""
    return _act(ctx, "power_off", args)


def reboot(ctx: StepContext, args: dict) -> dict:
    """Reboot the node (sysrq 'b') after ``delay_s``; only reports when power actions are off."""
    return _act(ctx, "reboot", args)
