"""The shipped sample config is what oslo-config-generator writes for the current options."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_sample_config_is_current(tmp_path) -> None:
    out = tmp_path / "kiln.conf.sample"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "oslo_config.generator",
            "--config-file",
            os.path.join(ROOT, "etc/kiln/kiln-config-generator.conf"),
            "--output-file",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    with open(os.path.join(ROOT, "etc/kiln/kiln.conf.sample")) as f:
        shipped = f.read()
    assert out.read_text() == shipped, "etc/kiln/kiln.conf.sample is stale: run `tox -e genconfig`"
    for group in ("[agent]", "[conductor]", "[database]", "[api]", "[inventory]", "[pxe]", "[dnsmasq]"):
        assert group in shipped
