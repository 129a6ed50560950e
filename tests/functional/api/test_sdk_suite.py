"""openstacksdk's own baremetal functional suite (shipped in its wheel) against kiln-api and
kiln-conductor over RabbitMQ: a ratchet on how many of its tests pass."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: Tests of openstacksdk.tests.functional.baremetal that must pass: Ironic 39's 94 of 96.
#: Measured: 95 (only TestNodeRetired.test_retired_in_available fails: the sdk retries Kiln's 409
#: with back-off past its 5 s per-test limit). 94 leaves room for one overrun on a loaded machine
#: (TestBareMetalAllocation.test_allocation_negative_failure has overrun it once).
PASS_FLOOR = 94

_CLOUDS = ("devstack", "devstack-alt", "devstack-admin", "devstack-system-admin")


def _clouds_yaml(path: Path, url: str) -> Path:
    """A clouds.yaml with the four clouds the sdk's functional base class asks for, all at ``url``."""
    lines = ["clouds:"]
    for name in _CLOUDS:
        lines += [
            f"  {name}:",
            "    auth_type: none",
            "    auth:",
            f"      endpoint: {url}",
            "    region_name: RegionOne",
            "    has_compute: false",
            "    has_image: false",
            "    has_network: false",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _results(junit: Path) -> tuple[list[str], list[str], list[str]]:
    """(passed, failed, skipped) test names from a pytest junit XML file."""
    passed, failed, skipped = [], [], []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return passed, failed, skipped


def test_openstacksdk_baremetal_suite(kiln, tmp_path):
    """Run the sdk's baremetal functional tests against kiln-api; at least PASS_FLOOR pass."""
    if importlib.util.find_spec("oslotest") is None:
        pytest.skip("oslotest (test-requirements.txt) is not installed; the sdk's tests need it")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(_clouds_yaml(tmp_path / "clouds.yaml", kiln))}
    for var in [v for v in env if v.startswith("OS_") and v != "OS_CLIENT_CONFIG_FILE"]:
        env.pop(var)
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
            "-c", os.devnull, "--pyargs", "openstack.tests.functional.baremetal", "-rs",
            f"--junitxml={junit}",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert junit.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    passed, failed, skipped = _results(junit)
    print(f"openstacksdk baremetal suite: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    for name in failed:
        print("FAILED", name)
    assert len(passed) + len(failed) + len(skipped) > 0, done.stdout[-4000:]
    assert len(passed) >= PASS_FLOOR, f"{len(passed)} passed < floor {PASS_FLOOR}; failed: {failed}"
