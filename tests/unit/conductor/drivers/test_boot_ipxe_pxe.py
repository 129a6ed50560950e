"""ipxe and pxe boot interfaces: rendered scripts, MAC links, dnsmasq files, clean-up and path safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from agent.common import exception
from agent.common.config import CONF
from agent.conductor.drivers import dnsmasq, ipxe, pxe

MAC_A = "52:54:00:AA:BB:01"
MAC_B = "52:54:00:aa:bb:02"
MAC_OFF = "52:54:00:aa:bb:03"


def _files(root) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def _live_hosts(boot_dirs) -> list[str]:
    """hostsdir files that give their MAC boot options or a lease (not the tombstones of ports that left)."""
    hostsdir = boot_dirs["hostsdir"]
    return sorted(n for n in os.listdir(hostsdir) if dnsmasq.is_live((hostsdir / n).read_text()))


@pytest.fixture
def node(make_node):
    return make_node(ports=[(MAC_A, True), (MAC_B, True), (MAC_OFF, False)])


def test_ipxe_prepare_ramdisk_writes_script_links_and_dnsmasq_files(node, acquire, boot_dirs) -> None:
    with acquire(node) as task:
        assert task.driver.interface_names["boot"] == "ipxe"
        assert isinstance(task.driver.boot, ipxe.IPXEBoot)
        task.driver.boot.prepare_ramdisk(task, {"kiln.api": "http://10.9.0.1:6385", "agent_token": "s3cr3t"})
        internal = task.node.driver_internal_info
    script = (boot_dirs["http_root"] / node / "boot.ipxe").read_text()
    assert script.startswith("#!ipxe\n")
    assert "kernel --name kernel --timeout 60000 http://10.9.0.1:8088/agent.kernel initrd=ramdisk " in script
    assert f"kiln.node_uuid={node} " in script
    assert "kiln.config_url=http://10.9.0.1:8088/agent.conf" in script
    assert "kiln.api=http://10.9.0.1:6385" in script
    assert "BOOTIF=01-${mac:hexhyp}" in script
    assert "initrd --name ramdisk --timeout 60000 http://10.9.0.1:8088/agent.initramfs" in script
    assert "s3cr3t" not in script and "token" not in script
    # One link per PXE-enabled port, none for the other one.
    assert _files(boot_dirs["http_root"]) == {
        f"{node}/boot.ipxe",
        "boot.ipxe",
        "52-54-00-aa-bb-01.ipxe",
        "52-54-00-aa-bb-02.ipxe",
    }
    assert os.readlink(boot_dirs["http_root"] / "52-54-00-aa-bb-01.ipxe") == f"{node}/boot.ipxe"
    assert (boot_dirs["http_root"] / "52-54-00-aa-bb-02.ipxe").read_text() == script
    # iPXE builds copied from Debian's ipxe package.
    assert (boot_dirs["tftp_root"] / "undionly.kpxe").read_bytes() == open(
        "/usr/lib/ipxe/undionly.kpxe", "rb"
    ).read()
    assert (boot_dirs["tftp_root"] / "snponly.efi").stat().st_size > 0
    # dnsmasq: one host file per PXE port, one options file for the node.
    assert sorted(os.listdir(boot_dirs["hostsdir"])) == ["52-54-00-aa-bb-01", "52-54-00-aa-bb-02"]
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-01").read_text() == (
        f"52:54:00:aa:bb:01,set:kiln-{node},set:kiln-525400aabb01\n"
    )
    assert (boot_dirs["optsdir"] / node).read_text().splitlines() == [
        f"tag:kiln-{node},tag:!ipxe,tag:!efi,option:bootfile-name,undionly.kpxe",
        f"tag:kiln-{node},tag:!ipxe,tag:efi,option:bootfile-name,snponly.efi",
        "tag:kiln-525400aabb01,tag:ipxe,option:bootfile-name,http://10.9.0.1:8088/52-54-00-aa-bb-01.ipxe",
        "tag:kiln-525400aabb02,tag:ipxe,option:bootfile-name,http://10.9.0.1:8088/52-54-00-aa-bb-02.ipxe",
    ]
    assert internal[pxe.WRITTEN_KEY] == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]


def test_transport_url_on_cmdline_only_without_config_url(node, acquire, boot_dirs) -> None:
    CONF.set_override("agent_config_url", None, group="pxe")
    CONF.set_override("kernel_transport_url", "rabbit://agent:pw@10.9.0.1:5672/", group="pxe")
    try:
        with acquire(node) as task:
            task.driver.boot.prepare_ramdisk(task, {})
    finally:
        CONF.clear_override("kernel_transport_url", group="pxe")
    script = (boot_dirs["http_root"] / node / "boot.ipxe").read_text()
    assert "kiln.transport_url=rabbit://agent:pw@10.9.0.1:5672/" in script
    assert "kiln.config_url" not in script


def test_clean_up_ramdisk_removes_everything_written(node, acquire, boot_dirs) -> None:
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
        task.driver.boot.clean_up_ramdisk(task)
        assert pxe.WRITTEN_KEY not in (task.node.driver_internal_info or {})
    assert _files(boot_dirs["http_root"]) == {"boot.ipxe"}
    assert _files(boot_dirs["tftp_root"]) == {"undionly.kpxe", "snponly.efi"}
    # dnsmasq forgets a deleted host file only on SIGHUP (which crashes 2.90): the file says "ignore".
    assert _live_hosts(boot_dirs) == []
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-01").read_text() == "52:54:00:aa:bb:01,ignore\n"
    assert os.listdir(boot_dirs["optsdir"]) == []


def test_prepare_instance_switches_to_local_boot_keeping_dhcp(node, acquire, boot_dirs) -> None:
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
        task.driver.boot.prepare_instance(task)
    assert _files(boot_dirs["http_root"]) == {"boot.ipxe"}
    assert os.listdir(boot_dirs["optsdir"]) == []
    # The host entries stay so the instance still gets its lease on the flat network; untagged, so
    # the boot options dnsmasq still holds in memory no longer apply.
    assert _live_hosts(boot_dirs) == ["52-54-00-aa-bb-01", "52-54-00-aa-bb-02"]
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-01").read_text() == "52:54:00:aa:bb:01\n"
    with acquire(node) as task:
        task.driver.boot.clean_up_instance(task)
    assert _live_hosts(boot_dirs) == []


def test_port_removed_after_prepare_is_still_cleaned_up(node, acquire, boot_dirs, db) -> None:
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    with db.begin() as conn:
        conn.execute(text("DELETE FROM ports WHERE address = '52:54:00:aa:bb:02'"))
    with acquire(node) as task:
        task.driver.boot.clean_up_ramdisk(task)
    assert _live_hosts(boot_dirs) == []
    assert _files(boot_dirs["http_root"]) == {"boot.ipxe"}


def test_pxe_writes_pxelinux_and_grub_configs(make_node, acquire, boot_dirs) -> None:
    node = make_node(boot_interface="pxe", ports=[(MAC_A, True)])
    with acquire(node) as task:
        assert isinstance(task.driver.boot, pxe.PXEBoot)
        task.driver.boot.prepare_ramdisk(task, {})
    tftp = boot_dirs["tftp_root"]
    assert _files(tftp) == {
        f"{node}/config",
        f"{node}/grub-52-54-00-aa-bb-01.cfg",
        "pxelinux.cfg/01-52-54-00-aa-bb-01",
        "grub/grub.cfg-01-52-54-00-aa-bb-01",
    }
    pxelinux = (tftp / "pxelinux.cfg" / "01-52-54-00-aa-bb-01").read_text()
    assert "kernel http://10.9.0.1:8088/agent.kernel\n" in pxelinux
    assert "append initrd=http://10.9.0.1:8088/agent.initramfs " in pxelinux
    assert "ipappend 2" in pxelinux
    grub = (tftp / "grub" / "grub.cfg-01-52-54-00-aa-bb-01").read_text()
    assert "linux (http,10.9.0.1:8088)/agent.kernel " in grub
    assert "BOOTIF=01-52-54-00-aa-bb-01" in grub
    assert "initrd (http,10.9.0.1:8088)/agent.initramfs" in grub
    assert (boot_dirs["optsdir"] / node).read_text().splitlines() == [
        f"tag:kiln-{node},tag:!efi,option:bootfile-name,pxelinux.0",
        f"tag:kiln-{node},tag:efi,option:bootfile-name,grubx64.efi",
    ]
    with acquire(node) as task:
        task.driver.boot.clean_up_ramdisk(task)
    assert _files(tftp) == set()


def test_next_server_and_ipv6_options(make_node, acquire, boot_dirs) -> None:
    node = make_node(ports=[(MAC_A, True)])
    CONF.set_override("tftp_server", "10.9.0.1", group="pxe")
    CONF.set_override("tftp_server_v6", "fd00:9::1", group="pxe")
    try:
        with acquire(node) as task:
            task.driver.boot.prepare_ramdisk(task, {})
    finally:
        CONF.clear_override("tftp_server", group="pxe")
        CONF.clear_override("tftp_server_v6", group="pxe")
    lines = (boot_dirs["optsdir"] / node).read_text().splitlines()
    assert f"tag:kiln-{node},option:server-ip-address,10.9.0.1" in lines
    assert (
        "tag:kiln-525400aabb01,tag:ipxe,option6:bootfile-url,http://10.9.0.1:8088/52-54-00-aa-bb-01.ipxe"
        in lines
    )
    assert f"tag:kiln-{node},tag:!ipxe,option6:bootfile-url,tftp://[fd00:9::1]/snponly.efi" in lines


def test_validate_names_missing_images_and_node(make_node, acquire, boot_dirs) -> None:
    node = make_node(ports=[(MAC_A, True)])
    CONF.set_override("deploy_kernel", None, group="pxe")
    CONF.set_override("deploy_ramdisk", None, group="pxe")
    try:
        with acquire(node) as task:
            with pytest.raises(exception.MissingParameterValue) as info:
                task.driver.boot.validate(task)
    finally:
        CONF.clear_override("deploy_kernel", group="pxe")
        CONF.clear_override("deploy_ramdisk", group="pxe")
    assert "deploy_kernel, deploy_ramdisk" in str(info.value)
    assert node in str(info.value)


def test_validate_requires_a_pxe_port(make_node, acquire, boot_dirs) -> None:
    node = make_node(ports=[(MAC_OFF, False)])
    with acquire(node) as task:
        with pytest.raises(exception.InvalidParameterValue, match="no port with pxe_enabled=True"):
            task.driver.boot.validate(task)


@pytest.mark.parametrize(
    "info, match",
    [
        ({"deploy_kernel": "http://x/k\n#!ipxe\nshell"}, "deploy_kernel"),
        ({"deploy_kernel": "http://x/${netX/ip}"}, "deploy_kernel"),
        ({"deploy_ramdisk": "http://x/r initrd=evil"}, "deploy_ramdisk"),
        ({"kernel_append_params": "quiet\nshell"}, "kernel_append_params"),
        ({"kernel_append_params": 'console="ttyS0"'}, "kernel_append_params"),
    ],
)
def test_injection_through_driver_info_is_refused(make_node, acquire, boot_dirs, info, match) -> None:
    node = make_node(driver_info=info, ports=[(MAC_A, True)])
    with acquire(node) as task:
        with pytest.raises(exception.InvalidParameterValue, match=match):
            task.driver.boot.prepare_ramdisk(task, {})
    assert os.listdir(boot_dirs["hostsdir"]) == []
    assert _files(boot_dirs["http_root"]) == set()


def test_ramdisk_param_with_spaces_is_refused(node, acquire, boot_dirs) -> None:
    with acquire(node) as task:
        with pytest.raises(exception.InvalidParameterValue, match="ramdisk parameter kiln.x"):
            task.driver.boot.prepare_ramdisk(task, {"kiln.x": "a b"})


def test_forged_mac_in_the_database_cannot_escape(node, acquire, boot_dirs, db, tmp_path) -> None:
    victim = tmp_path / "etc" / "passwd"
    victim.parent.mkdir()
    victim.write_text("root:x:0:0\n")
    with db.begin() as conn:
        conn.execute(
            text("UPDATE ports SET address = '../../etc/passwd' WHERE address = '52:54:00:aa:bb:02'")
        )
    with acquire(node) as task:
        with pytest.raises(exception.InvalidParameterValue) as info:
            task.driver.boot.prepare_ramdisk(task, {})
        # Clean-up still works for the valid MACs and touches nothing else.
        task.driver.boot.clean_up_ramdisk(task)
    assert "'../../etc/passwd' is not a MAC address" in str(info.value)
    assert victim.read_text() == "root:x:0:0\n"
    assert os.listdir(boot_dirs["hostsdir"]) == []


def test_symlinked_node_dir_pointing_outside_is_refused(node, acquire, boot_dirs, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, boot_dirs["http_root"] / node)
    with acquire(node) as task:
        with pytest.raises(exception.InvalidParameterValue, match="outside"):
            task.driver.boot.prepare_ramdisk(task, {})
    assert os.listdir(outside) == []


def test_dnsmasq_is_never_sent_sighup(node, acquire, boot_dirs, tmp_path) -> None:
    """dnsmasq 2.90 crashes on SIGHUP once it answered a tagged hostsdir entry: files only, no signal."""
    marker = tmp_path / "signals"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            f"log = lambda name: open({str(marker)!r}, 'a').write(name + '\\n')\n"
            "signal.signal(signal.SIGHUP, lambda *a: log('hup'))\n"
            "signal.signal(signal.SIGUSR1, lambda *a: log('usr1'))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        pid_file = tmp_path / "dnsmasq.pid"
        pid_file.write_text(f"{child.pid}\n")
        CONF.set_override("pid_file", str(pid_file), group="dnsmasq")
        with acquire(node) as task:
            task.driver.boot.prepare_ramdisk(task, {})
            task.driver.boot.prepare_instance(task)
            task.driver.boot.clean_up_ramdisk(task)
            task.driver.boot.clean_up_instance(task)
        child.send_signal(signal.SIGUSR1)  # a signal sent after them arrives after any they sent
        for _ in range(100):
            if marker.exists():
                break
            time.sleep(0.05)
        assert marker.read_text() == "usr1\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_reload_with_garbage_pid_file_sends_nothing(boot_dirs, tmp_path) -> None:
    pid_file = tmp_path / "dnsmasq.pid"
    pid_file.write_text("1; rm -rf /\n")
    CONF.set_override("pid_file", str(pid_file), group="dnsmasq")
    assert dnsmasq.reload() is False


def test_active_instance_keeps_host_entries_until_clean_up_instance(node, acquire, boot_dirs) -> None:
    # The direct deploy's order: prepare_instance_boot, then tear_down_agent's clean_up_ramdisk.
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
        task.driver.boot.prepare_instance(task)
        task.driver.boot.clean_up_ramdisk(task)
        internal = dict(task.node.driver_internal_info)
    assert internal[pxe.INSTANCE_DHCP_KEY] is True
    assert internal[pxe.WRITTEN_KEY] == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
    assert _live_hosts(boot_dirs) == ["52-54-00-aa-bb-01", "52-54-00-aa-bb-02"]
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-02").read_text() == "52:54:00:aa:bb:02\n"  # no tags
    assert os.listdir(boot_dirs["optsdir"]) == []  # a lease, but no boot file
    assert _files(boot_dirs["http_root"]) == {"boot.ipxe"}
    # Undeploy: the deploy interface's clean_up ends with clean_up_instance.
    with acquire(node) as task:
        task.driver.boot.clean_up_ramdisk(task)
        assert _live_hosts(boot_dirs) == ["52-54-00-aa-bb-01", "52-54-00-aa-bb-02"]
        task.driver.boot.clean_up_instance(task)
        assert pxe.INSTANCE_DHCP_KEY not in task.node.driver_internal_info
        assert pxe.WRITTEN_KEY not in task.node.driver_internal_info
    assert _live_hosts(boot_dirs) == []
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-02").read_text() == "52:54:00:aa:bb:02,ignore\n"


def test_agent_boot_after_an_instance_forgets_it(node, acquire, boot_dirs) -> None:
    # Cleaning (or a rebuild) boots the agent again: its clean-up removes the host entries.
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
        task.driver.boot.prepare_instance(task)
        task.driver.boot.prepare_ramdisk(task, {})
        assert pxe.INSTANCE_DHCP_KEY not in task.node.driver_internal_info
        assert len(os.listdir(boot_dirs["optsdir"])) == 1
        task.driver.boot.clean_up_ramdisk(task)
    assert _live_hosts(boot_dirs) == []
    assert os.listdir(boot_dirs["optsdir"]) == []


def test_instance_host_entries_follow_the_ports(node, acquire, boot_dirs, db, make_node) -> None:
    other = make_node(ports=[("52:54:00:aa:bb:09", True)])
    with acquire(other) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    with db.begin() as conn:
        conn.execute(text("DELETE FROM ports WHERE address = '52:54:00:aa:bb:02'"))
    with acquire(node) as task:
        task.driver.boot.prepare_instance(task)
    assert _live_hosts(boot_dirs) == ["52-54-00-aa-bb-01", "52-54-00-aa-bb-09"]
    # A host file tagged with the node that no record names (written by hand, an older release) goes too.
    (boot_dirs["hostsdir"] / "52-54-00-aa-bb-0a").write_text(f"52:54:00:aa:bb:0a,set:kiln-{node},set:x\n")
    with acquire(node) as task:
        task.driver.boot.clean_up_instance(task)
    assert _live_hosts(boot_dirs) == ["52-54-00-aa-bb-09"]  # the other node's stays
    assert (boot_dirs["hostsdir"] / "52-54-00-aa-bb-0a").read_text() == "52:54:00:aa:bb:0a,ignore\n"
    assert dnsmasq.remove_node_hosts(other) == 1
    assert dnsmasq.remove_node_hosts(other) == 0  # a tombstone stays one
    assert _live_hosts(boot_dirs) == []


def test_deleting_a_node_in_maintenance_buries_its_host_entries(node, acquire, boot_dirs) -> None:
    """A node deleted in maintenance runs no driver code; dnsmasq must still stop answering it."""
    from agent.conductor.manager import ConductorManager

    with acquire(node) as task:
        task.driver.boot.prepare_ramdisk(task, {})
    assert len(_live_hosts(boot_dirs)) == 2 and len(os.listdir(boot_dirs["optsdir"])) == 1
    from agent.db import api as db_api

    db_api.update_node(node, {"maintenance": True, "provision_state": "deploy failed"})
    ConductorManager("test-host").destroy_node({}, node)
    assert _live_hosts(boot_dirs) == []
    assert os.listdir(boot_dirs["optsdir"]) == []
