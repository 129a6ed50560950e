"""The lab's services: dnsmasq in the namespace, the HTTP/forward server, kiln-conductor and kiln-api."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from agent.conductor.drivers import dnsmasq
from agent.lab import net, procs, rabbit
from agent.lab.state import State

REPO = Path(__file__).resolve().parents[2]
HTTP_PORT = 8080
API_PORT = 6385
IPXE_DIR = "/usr/lib/ipxe"
KERNEL_PARAMS = "console=ttyS0 no_timer_check systemd.journald.forward_to_console=1 systemd.show_status=1"


def paths(state: State) -> dict[str, Path]:
    """The lab's directories, under its state directory."""
    d = state.directory
    return {
        "http": d / "http",
        "tftp": d / "tftp",
        "hosts": d / "dnsmasq" / "hosts",
        "opts": d / "dnsmasq" / "opts",
        "dnsmasq": d / "dnsmasq",
        "logs": d / "logs",
    }


def _env() -> dict[str, str]:
    # the caller's PYTHONPATH stays behind the checkout (a directory of entry points, for instance)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}


def start_dnsmasq(state: State, interface: str = net.BRIDGE) -> None:
    """dnsmasq on the lab bridge (or switch port): DHCP for the MACs the conductor wrote, TFTP of iPXE."""
    p = paths(state)
    for key in ("tftp", "hosts", "opts"):
        p[key].mkdir(parents=True, exist_ok=True)
    pid_file = p["dnsmasq"] / "dnsmasq.pid"
    conf = p["dnsmasq"] / "dnsmasq.conf"
    conf.write_text(
        dnsmasq.render_conf(
            interface,
            [net.DHCP_RANGE],
            tftp_root=str(p["tftp"]),
            hostsdir=str(p["hosts"]),
            optsdir=str(p["opts"]),
            pid_file=str(pid_file),
            ignore_unknown=True,
            extra=[
                f"dhcp-leasefile={p['dnsmasq'] / 'leases'}",
                "user=root",
                "no-ping",
                "no-resolv",
                "no-hosts",
                "dhcp-option=option:router",  # no gateway: nothing routes out of the lab
                "dhcp-option=option:dns-server",
                f"log-facility={p['logs'] / 'dnsmasq-dhcp.log'}",
            ],
        )
    )
    argv = ["ip", "netns", "exec", net.NETNS, "dnsmasq", f"--conf-file={conf}", "--keep-in-foreground"]
    proc = procs.start(state, "dnsmasq", argv)
    procs.wait_until(
        "dnsmasq",
        lambda: pid_file.exists() and pid_file.read_text().strip() != "",
        proc,
        p["logs"] / "dnsmasq.log",
        15,
    )


def start_server(state: State) -> str:
    """HTTP (boot files, ramdisk, images) and the RabbitMQ forward on 10.99.0.1; return the HTTP URL."""
    p = paths(state)
    p["http"].mkdir(parents=True, exist_ok=True)
    url = f"http://{net.HOST_IP}:{HTTP_PORT}"
    argv = [sys.executable, "-m", "agent.lab.serve", "--bind", net.HOST_IP, "--http-port", str(HTTP_PORT)]
    argv += ["--root", str(p["http"]), "--forward", "5672=127.0.0.1:5672"]
    proc = procs.start(state, "serve", argv, env=_env(), cwd=str(REPO))
    procs.wait_until("HTTP server", lambda: _get(url + "/") is not None, proc, p["logs"] / "serve.log", 20)
    return url


def _get(url: str, headers: dict[str, str] | None = None) -> bytes | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=3) as answer:
            return answer.read()
    except OSError:
        return None


def write_conductor_conf(state: State, password: str, http_url: str, extra: dict | None = None) -> Path:
    """kiln.conf for the lab's conductor and API (SQLite in the lab directory, its vhost), plus ``extra``."""
    p = paths(state)
    d = state.directory
    sections = {
        "DEFAULT": {"transport_url": rabbit.transport_url(password, "127.0.0.1"), "state_path": d},
        "database": {"connection": f"sqlite:///{d / 'kiln.sqlite'}"},
        "conductor": {
            "host": "kiln-lab",
            "enabled_hardware_types": "redfish,ipmi",
            "enabled_boot_interfaces": "ipxe,pxe,redfish-virtual-media",
            "enabled_deploy_interfaces": "direct",
            "enabled_management_interfaces": "redfish,ipmi",
            "enabled_power_interfaces": "redfish,ipmi",
            "enabled_network_interfaces": "flat,noop",
            "enabled_inspect_interfaces": "agent,no-inspect",
        },
        "pxe": {
            "tftp_root": p["tftp"],
            "http_root": p["http"],
            "http_url": http_url,
            "tftp_server": net.DNSMASQ_IP,
            "ipxe_firmware_dir": IPXE_DIR,
            "deploy_kernel": f"{http_url}/kiln-agent.kernel",
            "deploy_ramdisk": f"{http_url}/kiln-agent.initramfs",
            "kernel_append_params": KERNEL_PARAMS,
            "kernel_transport_url": rabbit.transport_url(password, net.HOST_IP),
        },
        "dnsmasq": {"hostsdir": p["hosts"], "optsdir": p["opts"], "pid_file": p["dnsmasq"] / "dnsmasq.pid"},
        "api": {"host_ip": net.HOST_IP, "port": API_PORT},
        # a full erase in automated cleaning, as Ironic does: the VMs' disks discard (qcow2 unmap), so
        # erasing 10 GiB takes seconds
        "deploy": {"erase_devices_priority": 10},
    }
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update(options)
    text = "".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
        for name, opts in sections.items()
    )
    conf = d / "kiln.conf"
    conf.write_text(text)
    conf.chmod(0o600)
    return conf


def _drivers(url: str) -> list[str]:
    body = _get(url + "/v1/drivers", {"X-OpenStack-Ironic-API-Version": "1.80"})
    return [d["name"] for d in json.loads(body)["drivers"]] if body else []


def start_kiln(state: State, conf: Path) -> str:
    """kiln-dbsync, then kiln-conductor and kiln-api on the lab's config; return the API URL."""
    logs = paths(state)["logs"]
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cmd.dbsync", "--config-file", str(conf), "upgrade"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kiln-dbsync upgrade failed for the lab: {proc.stderr.strip()[-2000:]}")
    conductor = procs.start(
        state, "kiln-conductor", [sys.executable, "-m", "agent.cmd.conductor", "--config-file", str(conf)],
        env=_env(), cwd=str(REPO),
    )  # fmt: skip
    api = procs.start(
        state, "kiln-api", [sys.executable, "-m", "agent.cmd.api", "--config-file", str(conf)],
        env=_env(), cwd=str(REPO),
    )  # fmt: skip
    url = f"http://{net.HOST_IP}:{API_PORT}"
    procs.wait_until("kiln-api", lambda: _get(url + "/") is not None, api, logs / "kiln-api.log", 60)
    procs.wait_until(
        "kiln-conductor (drivers registered)", lambda: "redfish" in _drivers(url), conductor,
        logs / "kiln-conductor.log", 90,
    )  # fmt: skip
    return url
