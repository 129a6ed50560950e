"""kiln-api and kiln-conductors as real processes on a given broker and database, for fault tests."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.functional import procs

API_VERSION = {"X-OpenStack-Ironic-API-Version": "1.80", "Content-Type": "application/json"}


def kiln_conf(tmp: Path, transport_url: str, db_url: str, api_port: int, extra: dict | None = None) -> Path:
    """Write kiln.conf for ``transport_url`` and ``db_url`` (fast heartbeats), merged with ``extra``."""
    sections: dict[str, dict] = {
        "DEFAULT": {
            "transport_url": transport_url,
            "control_exchange": f"kiln-fault-{uuid.uuid4().hex[:8]}",
            "state_path": tmp,
        },
        "database": {"connection": db_url},
        "conductor": {
            "heartbeat_interval": 1,
            "heartbeat_timeout": 6,
            "enabled_hardware_types": "fake-hardware",
        },
        "api": {"host_ip": "127.0.0.1", "port": api_port, "rpc_timeout": 10},
        "pxe": {"tftp_root": tmp / "tftpboot", "http_root": tmp / "httpboot"},
        "dnsmasq": {"hostsdir": tmp / "dhcp-hosts", "optsdir": tmp / "dhcp-opts"},
    }
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update(options)
    return procs.write_conf(tmp / "kiln.conf", sections)


def conductor_conf(conf: Path, host: str) -> Path:
    """A copy of ``conf`` with [conductor]host = ``host`` (several conductors on one machine)."""
    path = conf.with_name(f"kiln-{host}.conf")
    path.write_text(conf.read_text().replace("[conductor]\n", f"[conductor]\nhost = {host}\n", 1))
    return path


def start_conductor(conf: Path, host: str) -> subprocess.Popen:
    """Start kiln-conductor ``host`` and wait until it serves RPC."""
    log = conf.with_name(f"conductor-{host}.log")
    proc = procs.start("agent.cmd.conductor", conductor_conf(conf, host), log)
    procs.wait_for_log(log, "serving RPC", proc, 90)
    return proc


def start_api(conf: Path, api_port: int) -> subprocess.Popen:
    """Start kiln-api and wait until it answers."""
    proc = procs.start("agent.cmd.api", conf, conf.with_name("api.log"))
    procs.wait_for(lambda: procs.http_answers(f"http://127.0.0.1:{api_port}/"), 60, "kiln-api", (proc,))
    return proc


def call(url: str, method: str = "GET", body: object = None, timeout: float = 30) -> tuple[int, dict, dict]:
    """One API request: (status, JSON body or {}, headers); an error status is returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=API_VERSION)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else {}, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else {}, dict(exc.headers)
