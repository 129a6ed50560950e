"""Run ironic-python-agent 13's inventory in IPA's own interpreter and print JSON.

This file runs under the IPA virtual environment's Python (``.bench/ipa13``),
never under Kiln's: it imports nothing of ours.

    python ipa_driver.py inventory          # what IPA would send, plus its optional collectors
    python ipa_driver.py time RUNS WARMUP   # in-process timings of list_hardware_info()
    python ipa_driver.py once               # one list_hardware_info(), printed (the process benchmark)
"""

from __future__ import annotations

import importlib
import json
import logging
import resource
import statistics
import sys
import time


def _load():
    """Import IPA the way its agent does: config first, then hardware."""
    # config registers the options hardware.py reads at import time: it must come first.
    importlib.import_module("ironic_python_agent.config")
    hardware = importlib.import_module("ironic_python_agent.hardware")
    encoding = importlib.import_module("ironic_python_agent.encoding")

    return hardware, encoding


def _dumps(obj, encoding) -> str:
    """Encode with IPA's own REST encoder, as the agent does on the wire."""
    return json.dumps(obj, cls=encoding.RESTJSONEncoder, indent=2)


def inventory() -> dict:
    """Return list_hardware_info() and the pci-devices, numa-topology and lldp collectors."""
    hardware, encoding = _load()
    from ironic_python_agent import inspector, numa_inspector

    inv = hardware.dispatch_to_managers("list_hardware_info")
    collected: dict = {}
    failures = _Failures()
    inspector.collect_pci_devices_info(collected, failures)
    numa_inspector.collect_numa_topology_info(collected, failures)
    inspector.collect_lldp(collected, failures)
    out = {"inventory": inv, "collectors": collected, "failures": failures.messages}
    return json.loads(_dumps(out, encoding))


class _Failures:
    """The small part of IPA's AccumulatedFailures that its collectors call."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, fmt: str, *args) -> None:
        """Record one collector failure."""
        self.messages.append(fmt % args if args else fmt)


def timings(runs: int, warmup: int) -> dict:
    """Time dispatch_to_managers('list_hardware_info') in this process."""
    hardware, encoding = _load()
    t0 = time.perf_counter()
    hardware.get_managers()  # IPA initialises its managers once, at agent start
    init_s = time.perf_counter() - t0
    for _ in range(warmup):
        hardware.dispatch_to_managers("list_hardware_info")
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        info = hardware.dispatch_to_managers("list_hardware_info")
        _dumps(info, encoding)
        samples.append(time.perf_counter() - t)
    return {
        "runs": runs,
        "warmup": warmup,
        "init_s": init_s,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "samples_s": samples,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main(argv: list[str]) -> int:
    """Dispatch on the first argument; see the module docstring."""
    logging.basicConfig(level=logging.CRITICAL)
    mode = argv[0] if argv else "once"
    if mode == "inventory":
        print(json.dumps(inventory(), indent=2))
    elif mode == "time":
        runs = int(argv[1]) if len(argv) > 1 else 10
        warmup = int(argv[2]) if len(argv) > 2 else 2
        print(json.dumps(timings(runs, warmup)))
    elif mode == "once":
        hardware, encoding = _load()
        print(_dumps(hardware.list_hardware_info(), encoding))
    else:
        print(f"ipa_driver: unknown mode {mode!r} (inventory, time, once)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
