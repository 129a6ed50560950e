"""NVIDIA Xids from the kernel log: the hgx-h100 fixture, small trees, the live ring buffer."""

from __future__ import annotations

import os

from agent.inventory import kmsg
from agent.inventory.base import Root
from agent.inventory.collect import collect
from tests.unit.inventory.treebuild import FIXTURES, Tree


def _hgx() -> dict:
    return collect(os.path.join(FIXTURES, "hgx-h100"), use_nvml=False)


def test_hgx_xids_land_on_their_gpus():
    inv = _hgx()
    by_address = {g["pci_address"]: g["health"]["xid_errors"] for g in inv["gpus"]}
    assert [(e["xid"], e["seconds"]) for e in by_address["0000:ba:00.0"]] == [
        (48, 7203.311845),
        (63, 7203.311902),
        (79, 7215.009117),
    ]
    assert by_address["0000:ba:00.0"][2]["message"] == (
        "pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
    )
    assert [e["xid"] for e in by_address["0000:5c:00.0"]] == [13, 13]
    assert by_address["0000:5c:00.0"][0]["message"].startswith("pid=48211, name=python3, Graphics SM Warp")
    assert by_address["0000:18:00.0"] == []
    assert inv["kernel_log"] == {
        "source": "/dev/kmsg",
        "boot_id": "5d1c7a0e-7f3b-4d2a-9c8e-1b2a3c4d5e6f",
        "boot_time": 1718000000,
        "records": 13,
        "complete": True,
        "xid_count": 5,
        "unmatched_xids": [],
    }
    assert not [e for e in inv["errors"] if e["path"] in ("/dev/kmsg", "/proc/stat")]


def test_trees_without_nvidia_gpus_read_no_kernel_log():
    inv = collect(os.path.join(FIXTURES, "mi300x"), use_nvml=False)
    assert "kernel_log" not in inv
    assert all(g["health"]["xid_errors"] is None for g in inv["gpus"])


def test_parse_record_and_xid():
    assert kmsg.parse_record(
        "4,3601,7215009117,-;NVRM: Xid (PCI:0000:ba:00): 79, GPU has fallen off the bus."
    ) == (kmsg.Record(3601, 7215.009117, "NVRM: Xid (PCI:0000:ba:00): 79, GPU has fallen off the bus.", 4))
    assert kmsg.parse_record("no semicolon here") is None
    assert kmsg.parse_record("6,x,1,-;text") is None
    assert kmsg.parse_xid("NVRM: Xid (PCI:0001:3A:00.1): 31, pid=7, Ch 00000010, MMU Fault") == (
        "0001:3a:00.1",
        {"xid": 31, "message": "pid=7, Ch 00000010, MMU Fault", "seconds": 0.0},
    )
    assert kmsg.parse_xid("NVRM: GPU 0000:ba:00.0: GPU has fallen off the bus.") is None


def _tree(tmp_path, kmsg_text: str | bytes) -> Root:
    tree = Tree(tmp_path)
    tree.write("/dev/kmsg", kmsg_text)
    tree.write("/proc/sys/kernel/random/boot_id", "0f0e0d0c-0b0a-0908-0706-050403020100")
    tree.write("/proc/stat", "cpu  1 2 3\nbtime 1700000000")
    return Root(str(tmp_path))


def _gpu(address: str, vendor: str = "0x10de") -> dict:
    from agent.inventory.gpu_health import empty_health

    return {"pci_address": address, "vendor_id": vendor, "health": empty_health()}


def test_xids_of_a_vanished_gpu_are_kept_and_storms_are_capped(tmp_path):
    lines = [f"4,{n},{1000000 + n},-;NVRM: Xid (PCI:0000:18:00): 13, storm {n}" for n in range(100)]
    lines.append("4,100,2000000,-;NVRM: Xid (PCI:0000:99:00): 79, GPU has fallen off the bus.")
    root = _tree(tmp_path, "\n".join(lines))
    gpus = [_gpu("0000:18:00.0"), _gpu("0000:03:00.0", "0x1002")]

    summary = kmsg.attach_xids(root, gpus)

    xids = gpus[0]["health"]["xid_errors"]
    assert len(xids) == kmsg.MAX_XIDS_PER_GPU and xids[-1]["message"] == "storm 99"
    assert gpus[1]["health"]["xid_errors"] is None  # not an NVIDIA GPU
    assert summary["xid_count"] == 101
    assert summary["unmatched_xids"] == [
        {"pci_address": "0000:99:00.0", "xid": 79, "message": "GPU has fallen off the bus.", "seconds": 2.0}
    ]
    assert summary["complete"] is True and summary["records"] == 101
    assert root.errors == []


def test_a_wrapped_ring_is_not_complete(tmp_path):
    root = _tree(tmp_path, "6,5000,1,-;late message")
    summary, _ = kmsg.read_kernel_log(root)
    assert summary["complete"] is False and summary["records"] == 1


def test_garbled_lines_are_counted_in_errors(tmp_path):
    root = _tree(tmp_path, "6,0,0,-;ok\nthis is not a record\n 'continuation lines are fine'\n6,a,b,c")
    summary, _ = kmsg.read_kernel_log(root)
    assert summary["records"] == 1
    assert [(e.path, e.error) for e in root.errors] == [
        ("/dev/kmsg", "garbled: 2 line(s) not in the kernel's 'prio,seq,usec,flags;message' format")
    ]


def test_missing_log_and_boot_facts_become_null_and_errors(tmp_path):
    Tree(tmp_path).write("/proc/stat", "cpu  1 2 3")
    root = Root(str(tmp_path))
    gpus = [_gpu("0000:18:00.0")]

    summary = kmsg.attach_xids(root, gpus)

    assert gpus[0]["health"]["xid_errors"] is None
    assert summary["records"] is None and summary["xid_count"] is None and summary["unmatched_xids"] is None
    assert summary["boot_id"] is None and summary["boot_time"] is None
    assert [(e.path, e.error) for e in root.errors] == [
        ("/dev/kmsg", "missing"),
        ("/proc/sys/kernel/random/boot_id", "missing"),
        ("/proc/stat", "garbled: no 'btime N' line"),
    ]


def test_write_capture_round_trips(tmp_path):
    records = [
        kmsg.Record(0, 0.0, "Linux version"),
        kmsg.Record(7, 12.5, "NVRM: Xid (PCI:0000:18:00): 13, x"),
    ]
    kmsg.write_capture(records, str(tmp_path / "dev" / "kmsg"))
    assert kmsg.read_records(Root(str(tmp_path))) == records


def test_the_live_ring_buffer_is_read_without_waiting():
    """On this machine /dev/kmsg is a character device: reading stops at EAGAIN instead of blocking."""
    root = Root("/")
    records = kmsg.read_records(root)
    if records is None:  # not root, or no /dev/kmsg in this container
        assert root.errors and root.errors[0].path == "/dev/kmsg"
        return
    assert records and all(r.seconds >= 0 for r in records)
    assert [r.seq for r in records] == sorted(r.seq for r in records)
