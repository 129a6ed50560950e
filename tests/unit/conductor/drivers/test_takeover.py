"""Taking a node over: its boot files written again in this conductor's paths, and dropped by the last one."""

from __future__ import annotations

import os

import pytest

from agent.common import states
from agent.common.config import CONF
from agent.conductor.drivers import ipxe
from agent.db import api as db_api

MAC = "52:54:00:aa:bb:01"
HEXHYP = "52-54-00-aa-bb-01"


@pytest.fixture
def fallback(boot_dirs):
    """[pxe]enable_netboot_fallback on."""
    CONF.set_override("enable_netboot_fallback", True, group="pxe")
    firmware = boot_dirs["tftp_root"]
    for name in (CONF.pxe.ipxe_bootfile_bios, CONF.pxe.ipxe_bootfile_uefi):
        (firmware / name).write_bytes(b"ipxe")
    yield boot_dirs
    CONF.clear_override("enable_netboot_fallback", group="pxe")


def _files(root) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def test_pxe_fallback_boots_the_disk_and_clean_up_removes_it(make_node, acquire, fallback) -> None:
    node = make_node(boot_interface="pxe", ports=[(MAC, True)])
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
        task.driver.boot.prepare_instance(task)
    tftp = fallback["tftp_root"]
    pxelinux = (tftp / "pxelinux.cfg" / f"01-{HEXHYP}").read_text()
    assert "localboot 0" in pxelinux and "kernel" not in pxelinux
    grub = (tftp / "grub" / f"grub.cfg-01-{HEXHYP}").read_text()
    assert "exit" in grub and "linux" not in grub
    assert "option:bootfile-name,pxelinux.0" in (fallback["optsdir"] / node).read_text()
    assert (fallback["hostsdir"] / HEXHYP).read_text().startswith(f"{MAC},set:")
    with acquire(node) as task:
        task.driver.boot.clean_up_instance(task)
    assert _files(tftp) == {"undionly.kpxe", "snponly.efi"}
    assert os.listdir(fallback["optsdir"]) == []
    assert (fallback["hostsdir"] / HEXHYP).read_text() == f"{MAC},ignore\n"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (states.ACTIVE, "exit 0"),
        (states.DEPLOYWAIT, "kernel --name kernel"),
        (states.CLEANWAIT, "kernel --name kernel"),
        (states.AVAILABLE, None),
        (states.SERVICEWAIT, "kernel --name kernel"),
        ((states.SERVICEWAIT, {"service_ramdisk": False}), "exit 0"),
        ((states.CLEANWAIT, {"clean_without_ramdisk": True}), None),
    ],
)
def test_take_over_writes_what_the_state_needs(make_node, acquire, fallback, state, expected) -> None:
    state, internal = state if isinstance(state, tuple) else (state, {})
    node = make_node(ports=[(MAC, True)], provision_state=state, driver_internal_info=internal)
    with acquire(node) as task:
        task.driver.deploy.take_over(task)
    script = fallback["http_root"] / f"{HEXHYP}.ipxe"
    if expected is None:
        assert not script.exists() and os.listdir(fallback["optsdir"]) == []
        return
    assert expected in script.read_text()
    assert f"{HEXHYP}.ipxe" in (fallback["optsdir"] / node).read_text()
    assert db_api.get_node(node).driver_internal_info["boot_macs"] == [MAC]


def test_forget_node_removes_only_this_conductors_files(make_node, acquire, fallback) -> None:
    node = make_node(ports=[(MAC, True)], provision_state=states.ACTIVE)
    other = make_node(ports=[("52:54:00:aa:bb:09", True)], provision_state=states.ACTIVE)
    for uuid in (node, other):
        with acquire(uuid) as task:
            task.driver.deploy.take_over(task)
    ipxe.forget_node(node, [MAC])
    assert _files(fallback["http_root"]) == {"boot.ipxe", f"{other}/boot.ipxe", "52-54-00-aa-bb-09.ipxe"}
    assert os.listdir(fallback["optsdir"]) == [other]
    assert (fallback["hostsdir"] / HEXHYP).read_text() == f"{MAC},ignore\n"
    assert db_api.get_node(node).driver_internal_info["boot_macs"] == [MAC]  # the record is the new owner's
