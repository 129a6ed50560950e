"""clear_gpu_memory on the fixture trees' GPUs: NVML through its stand-in, nvidia-smi as an executable fake.

No NVIDIA driver here: the NVML stand-in (as in the inventory's tests) says which GPUs are busy;
the ``nvidia-smi`` on PATH is a real executable that logs its arguments and answers as
nvidia-smi does for a reset that worked, was refused as not supported, or found the GPU in use.
"""

from __future__ import annotations

import stat
import sys

import pytest

from agent.node.steps import gpu_memory
from agent.node.steps.context import StepContext
from agent.node.steps.runner import StepRunner
from tests.unit.common.test_gpu_gate import inventory
from tests.unit.inventory.test_gpu_health import FakeNvml, _Value
from tests.unit.node.steps.test_burnin import path_with_bin

H100 = sorted(g["pci_address"] for g in inventory("hgx-h100")["gpus"])
BUSY, UNSUPPORTED = "0000:5c:00.0", "0000:2a:00.0"
FAKE_SMI = f"""#!{sys.executable}
import os, sys
with open(os.environ["FAKE_SMI_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
bus = sys.argv[sys.argv.index("-i") + 1] if "-i" in sys.argv else "all"
if bus.lower() == "00000000:2a:00.0":
    print(f"Resetting GPU {{bus}} is not supported.")
    sys.exit(3)
print(f"GPU {{bus}} was successfully reset.")
print("All done.")
"""


class BusyNvml(FakeNvml):
    """The NVML stand-in for all 8 H100s of the fixture; one runs a CUDA process."""

    def __init__(self, busy: dict[str, list[int]] | None = None) -> None:
        super().__init__()
        self.busy = busy or {}
        self.shut_down = False

    def nvmlDeviceGetCount(self):
        return len(H100)

    def nvmlDeviceGetPciInfo(self, handle):
        index = int(handle.removeprefix("handle"))
        return _Value(busId=("0000" + H100[index]).upper().encode())

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        address = H100[int(handle.removeprefix("handle"))]
        return [_Value(pid=pid, usedGpuMemory=1 << 30) for pid in self.busy.get(address, [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        return []

    def nvmlShutdown(self):
        self.shut_down = True


@pytest.fixture
def smi(tmp_path, monkeypatch):
    """An executable fake nvidia-smi first on PATH; returns its call log."""
    script = path_with_bin(tmp_path, monkeypatch) / "nvidia-smi"
    script.write_text(FAKE_SMI)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "smi.log"
    monkeypatch.setenv("FAKE_SMI_LOG", str(log))
    return log


def test_idle_gpus_are_reset_busy_and_unsupported_ones_say_why(smi) -> None:
    nvml = BusyNvml({BUSY: [4242]})
    gpus = inventory("hgx-h100")["gpus"]
    entries = {
        e["pci_address"]: e
        for e in gpu_memory.clear(gpus, nvml, None, str(smi.parent / "bin" / "nvidia-smi"))
    }
    assert nvml.shut_down  # NVML let go of the GPUs before nvidia-smi resets them
    resets = smi.read_text().splitlines()
    assert resets == [f"--gpu-reset -i 0000{a}" for a in H100 if a != BUSY]
    assert entries[BUSY]["cleared"] is False
    assert entries[BUSY]["why_not"] == "in use by process(es) 4242: a GPU in use cannot be reset"
    assert entries[UNSUPPORTED]["cleared"] is False
    assert entries[UNSUPPORTED]["why_not"] == (
        f"reset not supported: nvidia-smi --gpu-reset -i 0000{UNSUPPORTED} exited 3: "
        f"Resetting GPU 0000{UNSUPPORTED} is not supported."
    )
    cleared = [a for a, e in entries.items() if e["cleared"]]
    assert sorted(cleared) == [a for a in H100 if a not in (BUSY, UNSUPPORTED)]
    assert all(entries[a]["method"] == gpu_memory.METHOD and entries[a]["why_not"] is None for a in cleared)


def test_without_nvidia_smi_nothing_is_reset(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    entries = gpu_memory.clear(inventory("hgx-h100")["gpus"], BusyNvml(), None, None)
    assert {e["why_not"] for e in entries} == {"nvidia-smi is not on PATH: the GPU reset runs through it"}


def test_the_step_without_nvml_records_why_for_every_gpu(conf, smi) -> None:
    reported = []
    inv = inventory("hgx-h100")
    runner = StepRunner(StepContext(conf, lambda: inv), report=lambda step, result: reported.append(result))
    runner.start("clear_gpu_memory", {})
    runner.join(10)
    [result] = reported
    assert result["status"] == "succeeded"  # not clearing is recorded, never a failed cleaning
    out = result["result"]
    assert out["cleared"] is False and len(out["gpus"]) == 8
    assert all(
        e["why_not"].startswith("NVML not available: nvidia-ml-py does not import") for e in out["gpus"]
    )
    assert smi.exists() is False  # nvidia-smi never ran


def test_other_vendors_and_gpu_less_nodes(conf) -> None:
    amd = gpu_memory.clear_gpu_memory(StepContext(conf, lambda: inventory("mi300x")), {})
    assert len(amd["gpus"]) == 8 and amd["cleared"] is False
    assert amd["gpus"][0]["why_not"] == "not reset: Kiln clears the memory of NVIDIA GPUs only (AMD)"
    assert amd["gpus"][0]["serial"] == inventory("mi300x")["gpus"][0]["serial"]
    assert gpu_memory.clear_gpu_memory(StepContext(conf, lambda: inventory("vm")), {}) == {
        "cleared": False,
        "gpus": [],
    }


def test_a_simulated_node_never_resets_this_machines_gpus(conf, smi) -> None:
    out = gpu_memory.clear_gpu_memory(StepContext(conf, lambda: inventory("hgx-h100"), live=False), {})
    assert {e["why_not"] for e in out["gpus"]} == {gpu_memory.NOT_LIVE} and len(out["gpus"]) == 8
    assert not smi.exists()
