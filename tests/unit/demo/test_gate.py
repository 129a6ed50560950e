"""kiln-demo's GPU gate: the real conductor, agents and ramdisk agents clean the fixture fleet.

The hgx-h100 node (degraded link, fatal Xids) and the mi300x node (an uncorrectable RAS error)
end quarantined; storage-sas and h200-vm (captured on a real H200) are cleaned and get a signed
turnover record. The test reads what the demo printed and, before the demo removes its database,
what it stored.
"""

from __future__ import annotations

import io
import threading

from agent.common import evidence
from agent.demo.runner import Demo, DemoOptions

TREES = ["hgx-h100", "mi300x", "h200-vm", "storage-sas"]


class _Recording(Demo):
    """The demo, keeping what the database holds after the gate (its database goes at the end)."""

    stored: dict[str, dict]

    def _gate(self) -> bool:
        from cryptography.hazmat.primitives import serialization

        from agent.conductor import turnover
        from agent.db import api as db_api

        ok = super()._gate()
        with open(turnover.key_path() + ".pub", "rb") as fh:
            public = serialization.load_pem_public_key(fh.read())
        self.stored = {}
        for node in self.nodes:
            row = db_api.get_node(node.node_uuid)
            records = [evidence.served(r) for r in db_api.list_turnover_records(node.node_uuid)]
            self.stored[node.label] = {
                "state": row.provision_state,
                "maintenance": row.maintenance,
                "reason": row.maintenance_reason,
                "traits": db_api.get_node_traits(node.node_uuid),
                "records": [evidence.verify(r, public) for r in records],
                "documents": records,
                "public": public,
            }
        return ok


def _block(output: str, label: str) -> str:
    """The demo's lines about ``label`` from its first gate line to the next node's."""
    lines = output.split("GPU acceptance gate: ", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if f"] {label:<12} " in line)
    end = next(
        (
            i
            for i, line in enumerate(lines[start:], start)
            if line.startswith("[") and f"] {label:<12} " not in line
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def test_the_gate_quarantines_the_bad_gpu_nodes_and_records_the_healthy_ones() -> None:
    before = {t.ident for t in threading.enumerate()}
    out = io.StringIO()
    demo = _Recording(DemoOptions(host=False, trees=TREES, timeout=60), out=out)
    code = demo.run()
    output = out.getvalue()
    assert code == 0, output
    assert "automated cleaning of 4 node(s), steps verify_gpus (100), erase_devices_metadata (99)" in output

    hgx = _block(output, "hgx-h100")
    assert "hgx-h100     clean failed" in hgx and "maintenance on, CUSTOM_GPU_QUARANTINE" in hgx
    reason = (
        "reason: GPU acceptance gate failed: GPU 0000:ba:00.0 (serial unknown): pcie_link: PCIe link runs "
        "x8 at 32.0 GT/s PCIe, expected x16 at 32.0 GT/s PCIe; GPU 0000:ba:00.0 (serial unknown): xid: "
        "Xid 48, 63, 79"
    )
    assert reason in hgx
    mi300x = _block(output, "mi300x")
    assert (
        "reason: GPU acceptance gate failed: GPU 0000:43:00.0 (serial 692325000003): ecc: 1 uncorrectable"
        in mi300x
    )

    storage = _block(output, "storage-sas")
    assert "storage-sas  available" in storage and ": signature valid (ed25519 key " in storage
    assert "cleaning cleaned" in storage and "owner before tenant-a" in storage
    assert "disks wiped: /dev/sda (metadata), /dev/sdb (metadata)" in storage
    assert "GPU memory cleared: False (the node has no GPUs)" in storage
    h200 = _block(output, "h200-vm")
    assert "h200-vm      available" in h200
    # The demo's nodes are simulated: this machine's GPUs (if it has any) are never reset for them.
    assert (
        "GPU 0000:00:06.0 (serial unknown): not cleared: not reset: the inventory describes another" in h200
    )

    stored = demo.stored
    for label in ("hgx-h100", "mi300x"):
        node = stored[label]
        assert node["state"] == "clean failed" and node["maintenance"] is True
        assert "CUSTOM_GPU_QUARANTINE" in node["traits"]
        assert node["reason"] in output
        assert node["records"][-1]["outcome"].startswith("failed: Clean step verify_gpus failed")
    for label in ("storage-sas", "h200-vm"):
        node = stored[label]
        assert node["state"] == "available" and not node["maintenance"]
        assert "CUSTOM_GPU_QUARANTINE" not in node["traits"]
        [record] = node["records"]
        assert record["outcome"] == "cleaned" and record["before"]["owner"] == "tenant-a"
        document = node["documents"][0]
        assert document["uuid"] in output  # the record the demo showed
        tampered = dict(document, record=document["record"].replace('"cleaned"', '"skipped"'), content=None)
        tampered.pop("content")
        try:
            evidence.verify(tampered, node["public"])
        except evidence.VerifyError as exc:
            assert "signature does not match" in str(exc)
        else:
            raise AssertionError("a tampered record verified")
    assert [g["pci_address"] for g in stored["h200-vm"]["records"][0]["gpus"]] == ["0000:00:06.0"]
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
    assert left == [], f"threads left running: {left}"


def test_no_gate_skips_it(capsys) -> None:
    from agent.cmd import demo as demo_cmd

    assert demo_cmd.main(["--no-host", "--trees", "vm", "--no-gate"]) == 0
    assert "GPU acceptance gate" not in capsys.readouterr().out
