"""Two kiln-conductors on separate state paths, as on separate hosts; one is killed with SIGKILL.

Each conductor has its own [DEFAULT]state_path, [pxe] tftp and http roots and [dnsmasq] dirs, as it
would on its own host with its own dnsmasq and boot-file server. Both share one PostgreSQL database
and this run's RabbitMQ vhost; kiln-api sends each node's calls to the conductor the hash ring
names. The nodes are fake-hardware (simulated power) with the real ipxe boot interface and
[pxe]enable_netboot_fallback, so a deployed node keeps a MAC-keyed iPXE script that boots its disk.
When the conductor that deployed them dies, the survivor takes them over: it writes their boot files
in its own paths and reboots the deployed node.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import openstack.config
import pytest
from openstack import connection
from oslo_config import cfg

from agent.common import config
from agent.conductor import hash_ring
from agent.db import api as db_api
from tests.functional import procs

CONF = cfg.CONF
HOSTS = ("ft-take-a", "ft-take-b")
ACTIVE_MAC = "52:54:00:aa:00:01"
WAITING_MAC = "52:54:00:aa:00:02"

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
]


class Site:
    """One test's database, exchange, per-conductor state paths, kiln-api and kiln-conductors."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.exchange = f"kiln-take-{uuid.uuid4().hex[:8]}"
        self.api_port = procs.free_port()
        self.firmware = tmp / "ipxe-firmware"  # what Debian's ipxe package puts in /usr/lib/ipxe
        self.firmware.mkdir()
        for name in ("undionly.kpxe", "snponly.efi"):
            (self.firmware / name).write_bytes(b"iPXE build " + name.encode())
        self.procs: dict[str, object] = {}

    def state(self, host: str) -> Path:
        """The state path of conductor ``host`` (its own disk on its own host)."""
        return self.tmp / host

    def conf(self, name: str, host: str | None = None) -> Path:
        """Write the config of kiln-api (``host`` None) or of conductor ``host``."""
        state = self.state(host) if host else self.tmp / "api"
        sections: dict[str, dict] = {
            "DEFAULT": {
                "transport_url": procs.RABBIT_URL,
                "control_exchange": self.exchange,
                "state_path": state,
            },
            "database": {"connection": self.db_url},
            "api": {"host_ip": "127.0.0.1", "port": self.api_port},
            "conductor": {
                "host": host or "api",
                "heartbeat_interval": 1,
                "heartbeat_timeout": 4,
                "hash_ring_reset_interval": 1,
                "node_locked_retry_interval": 0.2,
                "enabled_hardware_types": "fake-hardware",
                "enabled_boot_interfaces": "ipxe,fake",
                "enabled_deploy_interfaces": "fake,direct",
                "enabled_power_interfaces": "fake",
                "enabled_management_interfaces": "fake",
                "enabled_network_interfaces": "noop",
                "enabled_inspect_interfaces": "no-inspect,fake",
                "deploy_callback_timeout": 600,
            },
            "deploy": {"clean_callback_timeout": 600},
            "pxe": {
                "tftp_root": state / "tftpboot",
                "http_root": state / "httpboot",
                "http_url": f"http://{host or 'api'}.example:8088",
                "deploy_kernel": "http://images.example/agent.kernel",
                "deploy_ramdisk": "http://images.example/agent.initramfs",
                "agent_config_url": "http://images.example/agent.conf",
                "ipxe_firmware_dir": self.firmware,
                "enable_netboot_fallback": "true",
            },
            "dnsmasq": {
                "hostsdir": state / "dhcp-hosts",
                "optsdir": state / "dhcp-opts",
                "ignore_unknown": "true",
            },
        }
        return procs.write_conf(self.tmp / f"{name}.conf", sections)

    def start(self, name: str, module: str, conf: Path) -> object:
        """Start ``module`` with ``conf``; its log is <tmp>/<name>.log."""
        proc = procs.start(module, conf, self.tmp / f"{name}.log")
        self.procs[name] = proc
        return proc

    def logs(self) -> str:
        """Every log of this test, for assertion messages."""
        return "\n".join(f"--- {p.name}\n{procs.read(p)[-4000:]}" for p in sorted(self.tmp.glob("*.log")))

    def close(self) -> None:
        """Stop every process still running."""
        for proc in self.procs.values():
            procs.stop(proc, 15)


@pytest.fixture
def site(tmp_path):
    """A Site on a throwaway database; the test process reads the same database."""
    config.register_opts(CONF)
    CONF([], project="kiln")
    CONF.set_override("heartbeat_timeout", 4, group="conductor")  # as the conductors: the ring agrees
    with procs.throwaway_postgres() as url:
        db_api.configure(url)
        s = Site(tmp_path, url)
        try:
            yield s
        finally:
            s.close()
            db_api.dispose()
            CONF.clear_override("heartbeat_timeout", group="conductor")


def _uuid_owned_by(host: str) -> str:
    """A node UUID that the ring of both conductors maps to ``host``."""
    ring = hash_ring.HashRing(HOSTS, CONF.conductor.hash_partition_exponent)
    while True:
        candidate = str(uuid.uuid4())
        if ring.get_hosts(candidate)[0] == host:
            return candidate


def _script(site: Site, host: str, mac: str) -> str:
    """The iPXE script conductor ``host`` serves to port ``mac`` ('' when it has none)."""
    return procs.read(site.state(host) / "httpboot" / f"{mac.replace(':', '-')}.ipxe")


def _sdk(site: Site) -> connection.Connection:
    region = openstack.config.get_cloud_region(
        auth_type="none",
        baremetal_endpoint_override=f"http://127.0.0.1:{site.api_port}",
        baremetal_api_version="1.80",
        load_yaml_config=False,
        load_envvars=False,
    )
    return connection.Connection(config=region)


def _enroll(conn, node_uuid: str, mac: str, deploy: str, automated_clean: bool):
    node = conn.baremetal.create_node(
        uuid=node_uuid,
        driver="fake-hardware",
        boot_interface="ipxe",
        deploy_interface=deploy,
        network_interface="noop",
        automated_clean=automated_clean,
    )
    conn.baremetal.create_port(node_uuid=node.id, address=mac, pxe_enabled=True)
    conn.baremetal.set_node_provision_state(node, "manage", wait=True, timeout=60)
    return node


def test_survivor_rewrites_boot_files_and_reboots_the_dead_conductors_node(site) -> None:
    victim, survivor = HOSTS
    procs.dbsync(site.conf("dbsync", victim))
    conductors = {host: site.start(host, "agent.cmd.conductor", site.conf(host, host)) for host in HOSTS}
    api = site.start("api", "agent.cmd.api", site.conf("api"))
    running = (api, *conductors.values())
    procs.wait_for(
        lambda: {c.hostname for c in db_api.get_online_conductors(4)} == set(HOSTS),
        60,
        "both conductors to register",
        running,
    )
    procs.wait_for(lambda: procs.http_answers(f"http://127.0.0.1:{site.api_port}/"), 60, "kiln-api", running)
    conn = _sdk(site)

    # Both nodes belong to the victim. One it deploys (fake deploy: active at once); the other it
    # cleans with the agent's direct deploy, which waits in "clean wait" for an agent that never boots.
    active = _enroll(conn, _uuid_owned_by(victim), ACTIVE_MAC, "fake", automated_clean=False)
    waiting = _enroll(conn, _uuid_owned_by(victim), WAITING_MAC, "direct", automated_clean=True)
    conn.baremetal.set_node_provision_state(active, "provide", wait=True, timeout=60)
    conn.baremetal.set_node_provision_state(active, "active", wait=True, timeout=60)
    conn.baremetal.set_node_provision_state(waiting, "provide")
    procs.wait_for(
        lambda: db_api.get_node(waiting.id).provision_state == "clean wait", 60, "clean wait", running
    )
    victim_id = db_api.get_conductor(victim).id
    survivor_id = db_api.get_conductor(survivor).id
    assert conn.baremetal.get_node(active.id).conductor == victim
    disk_script = _script(site, victim, ACTIVE_MAC)
    # UEFI (the default boot mode): iPXE exits, and the firmware boots its next device, the disk.
    assert "exit 0" in disk_script and "(uefi)" in disk_script and "kernel" not in disk_script, disk_script
    assert f"kiln.node_uuid={waiting.id}" in _script(site, victim, WAITING_MAC)
    assert not (site.state(survivor) / "httpboot").exists() or not list(
        (site.state(survivor) / "httpboot").glob("*.ipxe")
    ), "the survivor wrote boot files before it owned any node"

    # The victim dies without a word; its state path stays behind on its (dead) host.
    conductors[victim].send_signal(signal.SIGKILL)
    conductors[victim].wait(10)
    running = (api, conductors[survivor])
    for node in (active, waiting):
        procs.wait_for(
            lambda n=node: db_api.get_node(n.id).conductor_affinity == survivor_id,
            60,
            f"the survivor to take node {node.id} over",
            running,
        )

    # The survivor's own paths now hold what the victim's held, with the same content.
    taken = _script(site, survivor, ACTIVE_MAC)
    assert taken == disk_script, site.logs()
    ramdisk = _script(site, survivor, WAITING_MAC)
    assert f"kiln.node_uuid={waiting.id}" in ramdisk
    assert "kernel --name kernel" in ramdisk and "http://images.example/agent.kernel" in ramdisk
    assert (site.state(survivor) / "tftpboot" / "undionly.kpxe").read_bytes() == b"iPXE build undionly.kpxe"
    for node, mac in ((active, ACTIVE_MAC), (waiting, WAITING_MAC)):
        host_files = list((site.state(survivor) / "dhcp-hosts").iterdir())
        assert any(mac in procs.read(f) for f in host_files), [procs.read(f) for f in host_files]
        opts = procs.read(site.state(survivor) / "dhcp-opts" / node.id)
        assert f"http://{survivor}.example:8088/{mac.replace(':', '-')}.ipxe" in opts, opts
    survivor_log = procs.read(site.tmp / f"{survivor}.log")
    assert f"Node {active.id} (active) taken over by conductor {survivor}" in survivor_log
    assert f"Node {waiting.id} (clean wait) taken over by conductor {survivor}" in survivor_log
    assert db_api.get_node(waiting.id).provision_state == "clean wait"  # its cleaning goes on

    # The deployed node reboots through the API, now served by the survivor.
    assert conn.baremetal.get_node(active.id).conductor == survivor
    conn.baremetal.set_node_power_state(active, "power off", wait=True, timeout=60)
    conn.baremetal.set_node_power_state(active, "rebooting", wait=True, timeout=60)
    after = conn.baremetal.get_node(active.id)
    assert after.power_state == "power on" and after.provision_state == "active", after
    assert after.last_error is None, after.last_error
    assert _script(site, survivor, ACTIVE_MAC) == taken  # a reboot boots the disk again

    # The victim comes back on its host: the ring gives it its nodes back. It takes them over again
    # (its files are rewritten), and the survivor removes the ones it wrote, leaving tombstones (ignore,
    # as [dnsmasq]ignore_unknown is on) for the MACs, so that only one dnsmasq serves each node.
    conductors[victim] = site.start(victim, "agent.cmd.conductor", site.conf(victim, victim))
    running = (api, *conductors.values())
    for node in (active, waiting):
        procs.wait_for(
            lambda n=node: db_api.get_node(n.id).conductor_affinity == victim_id,
            60,
            f"the returning conductor to take node {node.id} back",
            running,
        )
    for node, mac in ((active, ACTIVE_MAC), (waiting, WAITING_MAC)):
        procs.wait_for(
            lambda m=mac: not _script(site, survivor, m), 30, f"the survivor to drop {mac}'s script", running
        )
        assert not (site.state(survivor) / "dhcp-opts" / node.id).exists()
        assert not (site.state(survivor) / "httpboot" / node.id).exists()
        host_files = list((site.state(survivor) / "dhcp-hosts").iterdir())
        assert [procs.read(f) for f in host_files if mac in procs.read(f)] == [f"{mac},ignore\n"]
    assert _script(site, victim, ACTIVE_MAC) == disk_script
    assert f"kiln.node_uuid={waiting.id}" in _script(site, victim, WAITING_MAC)
    assert "its boot files here are removed" in procs.read(site.tmp / f"{survivor}.log")
