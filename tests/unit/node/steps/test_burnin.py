"""burnin_gpus: dcgmi diag through an executable fake dcgmi, the 'neither' error, the matmul checks.

This machine has no GPU, no DCGM and no cupy. The DCGM path runs a real executable ``dcgmi`` on
PATH that prints dcgmi's JSON (tests/fixtures/dcgm). The compute path's arithmetic check and
throughput judgement run with numpy as the array module: the same code as with cupy.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys

import numpy
import pytest

from agent.node.steps import burnin, dcgm, matmul
from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError
from agent.node.steps.runner import StepRunner
from tests.unit.common.test_gpu_gate import DEGRADED, FakeNvml, inventory, with_nvml

DCGM_FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "dcgm")
FAKE_DCGMI = f"""#!{sys.executable}
import os, sys
with open(os.environ["FAKE_DCGMI_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:2] != ["diag"] or "-j" not in sys.argv:
    sys.stderr.write("Usage: dcgmi diag -r LEVEL -j\\n")
    sys.exit(2)
with open(os.environ["FAKE_DCGMI_OUTPUT"]) as out:
    sys.stdout.write(out.read())
sys.exit(int(os.environ.get("FAKE_DCGMI_RC", "0")))
"""


def path_with_bin(tmp_path, monkeypatch):
    """A directory of our own first on PATH (the system's programs stay reachable after it)."""
    path = tmp_path / "bin"
    path.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ.get('PATH', '')}")
    return path


def install_fake_dcgmi(tmp_path, monkeypatch):
    """Put the executable fake dcgmi on PATH; returns answer(output_file, rc), its call log as .log."""
    script = path_with_bin(tmp_path, monkeypatch) / "dcgmi"
    script.write_text(FAKE_DCGMI)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "dcgmi.log"
    monkeypatch.setenv("FAKE_DCGMI_LOG", str(log))

    def answer(name: str, rc: int = 0) -> None:
        monkeypatch.setenv("FAKE_DCGMI_OUTPUT", os.path.join(DCGM_FIXTURES, name))
        monkeypatch.setenv("FAKE_DCGMI_RC", str(rc))

    answer.log = log
    return answer


@pytest.fixture
def no_dcgmi():
    """This machine has no dcgmi (the 'neither' case needs that)."""
    assert shutil.which("dcgmi") is None, "a real dcgmi is installed here; the test expects none"


@pytest.fixture
def fake_dcgmi(tmp_path, monkeypatch):
    """The executable fake dcgmi, first on PATH."""
    return install_fake_dcgmi(tmp_path, monkeypatch)


def _run(conf, inv: dict, args: dict) -> dict:
    """burnin_gpus through the real StepRunner; the reported result."""
    reported = []
    runner = StepRunner(StepContext(conf, lambda: inv), report=lambda step, result: reported.append(result))
    runner.start("burnin_gpus", args)
    runner.join(30)
    assert len(reported) == 1
    return reported[0]


@pytest.mark.parametrize(("duration", "level"), [(1, 1), (119, 1), (120, 2), (1799, 2), (1800, 3), (3600, 4)])
def test_the_dcgm_level_follows_the_duration(duration, level) -> None:
    assert dcgm.level_for(duration) == level


def test_dcgm_pass(conf, fake_dcgmi) -> None:
    fake_dcgmi("dcgm4-level2-pass.json")
    result = _run(conf, inventory("hgx-h100"), {"duration": 600})
    assert result["status"] == "succeeded", result["error"]
    out = result["result"]
    assert fake_dcgmi.log.read_text() == "diag -r 2 -j\n"
    assert out["method"] == "dcgm" and out["level"] == 2 and out["dcgm_version"] == "4.2.3"
    assert {(t["category"], t["name"], t["status"]) for t in out["tests"]} == {
        ("Deployment", "software", "pass"),
        ("Integration", "pcie", "pass"),
        ("Hardware", "memory", "pass"),
    }
    assert out["findings"] == []


def test_dcgm4_failure_names_the_gpu_its_serial_and_the_test(conf, fake_dcgmi) -> None:
    fake_dcgmi("dcgm4-level2-fail.json", rc=226)
    result = _run(conf, inventory("hgx-h100"), {"duration": 300})
    assert result["status"] == "failed"
    [finding] = result["result"]["findings"]
    # No NVML in the fixture: DCGM's GPU 6 is the seventh NVIDIA GPU in PCI order, its serial DCGM's.
    assert finding["check"] == "burnin" and finding["pci_address"] == DEGRADED
    assert finding["serial"] == "1654024075045"
    assert "test 'memory' fail: A memory mismatch was detected on GPU 6" in finding["message"]
    assert result["error"].startswith(
        f"burnin_gpus: GPU burn-in failed: GPU {DEGRADED} (serial 1654024075045): burnin: DCGM diag level 2"
    )
    assert result["result"]["exit_code"] == 226


def test_dcgm3_output_is_read_too_and_serials_match_nvml(conf, fake_dcgmi) -> None:
    fake_dcgmi("dcgm3-level1-fail.json", rc=226)
    inv = with_nvml(inventory("hgx-h100"), FakeNvml())  # NVML gives 0000:18:00.0 serial ...039
    inv["gpus"][6]["serial"] = "1654024075045"
    result = _run(conf, inv, {"duration": 30})
    assert fake_dcgmi.log.read_text() == "diag -r 1 -j\n"
    [finding] = result["result"]["findings"]
    assert (finding["pci_address"], finding["serial"]) == (inv["gpus"][6]["pci_address"], "1654024075045")
    assert "'Page Retirement/Row Remap' fail: GPU 6 had uncorrectable memory errors" in finding["message"]
    assert result["result"]["dcgm_version"] == "3.3.5"


def test_dcgm_that_cannot_run_fails_without_findings(conf, fake_dcgmi) -> None:
    fake_dcgmi("dcgm4-runtime-error.json", rc=1)
    result = _run(conf, inventory("hgx-h100"), {})
    assert result["status"] == "failed" and not result["result"].get("findings")
    assert "dcgmi diag -r 2 -j could not run: Error: unable to establish a connection" in result["error"]


def test_dcgmi_without_json_says_what_it_printed(conf, fake_dcgmi, tmp_path) -> None:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("Error: Diagnostic could not be run while a GPU is in use.\n")
    fake_dcgmi(str(garbage), rc=1)
    with pytest.raises(
        StepError, match=r"exited 1 without JSON output; it said: Error: Diagnostic could not"
    ):
        burnin.burnin_gpus(StepContext(conf, lambda: inventory("hgx-h100")), {})


def test_neither_dcgm_nor_cupy_fails_saying_what_is_missing(conf, no_dcgmi) -> None:
    result = _run(conf, inventory("hgx-h100"), {"duration": 60})
    assert result["status"] == "failed"
    assert (
        "cannot burn in 8 GPU(s): dcgmi (NVIDIA DCGM) is not on PATH and cupy does not import"
        in result["error"]
    )
    assert "Install DCGM (datacenter-gpu-manager) or cupy (cupy-cuda12x)" in result["error"]
    assert not result["result"].get("findings")  # not the GPUs' fault: no quarantine


def test_a_node_without_gpus_has_nothing_to_burn_in(conf, no_dcgmi) -> None:
    result = _run(conf, inventory("vm"), {})
    assert result["status"] == "succeeded" and result["result"]["note"] == "no GPUs to burn in"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"duration": 0}, "args.duration must be a number from 1 to"),
        ({"duration": "5m"}, "args.duration must be a number"),
        ({"min_throughput": 1.5}, "args.min_throughput must be a number from 0 to 1"),
        ({"size": 8.5}, "args.size must be a whole number"),
    ],
)
def test_bad_arguments_are_named(conf, args, named) -> None:
    with pytest.raises(StepError, match=named):
        burnin.burnin_gpus(StepContext(conf, lambda: inventory("hgx-h100")), args)


# --- the compute path, with numpy as the array module ---------------------------------------------


def test_the_matmul_burn_checks_and_times_real_products() -> None:
    measured = matmul.burn(numpy, lambda: None, size=96, seconds=0.05)
    assert measured["mismatches"] == 0 and measured["checked"] == 2 * 8 * 96
    assert measured["matmuls"] >= matmul.BATCH and measured["seconds"] >= 0.05
    assert measured["tflops"] == pytest.approx(
        2 * 96**3 * measured["matmuls"] / measured["seconds"] / 1e12, rel=0.03
    )


def test_a_wrong_product_is_caught() -> None:
    a, b = matmul.inputs(64, seed=3)
    c = a @ b
    rows = numpy.array([1, 5, 9])
    assert matmul.check_rows(a, b, c[rows], rows)["mismatches"] == 0
    c[5, 7] += 0.5  # one element off by far less than its magnitude
    c[9, 0] = numpy.nan
    assert matmul.check_rows(a, b, c[rows], rows)["mismatches"] == 2


class _FlakyNumpy:
    """numpy whose matmul corrupts one element: a GPU computing wrong."""

    def __getattr__(self, name):
        return getattr(numpy, name)

    def matmul(self, a, b, out=None):
        c = numpy.matmul(a, b, out=out)
        c[3, 3] *= -1.0
        return c


def test_a_gpu_computing_wrong_fails_the_burnin() -> None:
    inv = inventory("hgx-h100")
    measured = matmul.burn(_FlakyNumpy(), lambda: None, size=64, seconds=0.01, sample_rows=64)
    result = burnin.judge_all([("0000:18:00.0", measured)], {"0000:18:00.0": inv["gpus"][0]}, 0.0)
    assert [f["message"].split(":")[0] for f in result["findings"]] == [
        "matrix multiply differs from the CPU's result"
    ]


def test_throughput_is_judged_against_the_sku_peak() -> None:
    inv = inventory("hgx-h100")
    gpus = {g["pci_address"]: g for g in inv["gpus"]}
    measured = matmul.burn(numpy, lambda: None, size=64, seconds=0.01)
    result = burnin.judge_all([("0000:18:00.0", dict(measured))], gpus, 0.5)
    slow = [f for f in result["findings"] if f["pci_address"] == "0000:18:00.0"]
    assert len(slow) == 1
    assert "is below 50% of the SKU's datasheet peak 67 TFLOPS (H100_SXM5_80GB)" in slow[0]["message"]
    assert result["gpus"][0]["peak_tflops"] == 67.0 and result["gpus"][0]["fraction_of_peak"] < 0.5
    # The seven NVIDIA GPUs CUDA did not list cannot pass either.
    unseen = {f["pci_address"] for f in result["findings"] if "CUDA lists no GPU" in f["message"]}
    assert unseen == set(gpus) - {"0000:18:00.0"}
    fast = burnin.judge_all([(a, dict(measured, tflops=60.0)) for a in gpus], gpus, 0.5)
    assert fast["findings"] == [] and fast["unchecked"] == []


def test_a_sku_without_a_peak_is_reported_unchecked() -> None:
    gpu = inventory("hgx-h100")["gpus"][0]
    gpu["sku"] = {"trait": "MYSTERY_GPU"}
    measured = matmul.burn(numpy, lambda: None, size=32, seconds=0.01)
    result = burnin.judge_all([(gpu["pci_address"], measured)], {gpu["pci_address"]: gpu}, 0.5)
    assert result["findings"] == []
    assert result["unchecked"] == [
        f"GPU {gpu['pci_address']}: throughput not compared: "
        "the catalogue has no FP32 peak for SKU MYSTERY_GPU"
    ]


def test_a_simulated_node_never_burns_in_this_machines_gpus(conf, fake_dcgmi) -> None:
    fake_dcgmi("dcgm4-level2-pass.json")
    ctx = StepContext(conf, lambda: inventory("hgx-h100"), live=False)
    with pytest.raises(StepError, match="the inventory describes another machine"):
        burnin.burnin_gpus(ctx, {})
    assert not fake_dcgmi.log.exists()
