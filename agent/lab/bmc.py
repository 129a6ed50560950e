"""The lab's BMCs on 127.0.0.1: sushy-tools' Redfish emulator (libvirt mode) and virtualbmc's IPMI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import bcrypt

from agent.lab import procs
from agent.lab.state import State
from agent.lab.vms import URI

ADDRESS = "127.0.0.1"
USER = "admin"


def program(name: str) -> str:
    """``name`` beside this Python (a venv's bin) or on PATH; RuntimeError telling what to install."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: pip install sushy-tools virtualbmc libvirt-python")
    return found


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 401: up, and asking for the password
    except OSError:
        return False


def start_redfish(state: State, password: str, uuids: list[str], media_pool: str) -> str:
    """sushy-emulator serving the lab's domains only, with HTTP basic auth; return its URL.

    Virtual media it inserts are uploaded into the libvirt storage pool ``media_pool`` and attached
    to the domain as a SATA CD-ROM (sushy-tools' libvirt driver needs a pool for that).
    """
    directory = state.directory / "bmc"
    directory.mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "redfish.htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n")
    conf = directory / "sushy.conf"
    conf.write_text(
        f"SUSHY_EMULATOR_LIBVIRT_URI = {URI!r}\n"
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = {uuids!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = False\n"
        f"SUSHY_EMULATOR_STORAGE_POOL = {media_pool!r}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(directory / 'state')!r}\n"  # not sushy-tools' shared /tmp one
    )
    port = free_port()
    argv = [program("sushy-emulator"), "--config", str(conf), "-i", ADDRESS, "-p", str(port)]
    proc = procs.start(state, "sushy-emulator", argv + ["--libvirt-uri", URI])
    url = f"http://{ADDRESS}:{port}"
    log = state.directory / "logs" / "sushy-emulator.log"
    procs.wait_until("Redfish emulator", lambda: _answers(url + "/redfish/v1/"), proc, log, 60)
    return url


def _vbmc(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [program("vbmc"), "--no-daemon", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"vbmc {' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def start_ipmi(state: State, password: str, domains: list[str]) -> dict[str, int]:
    """vbmcd with its config in the lab directory, and an IPMI BMC per domain; return their UDP ports."""
    directory = state.directory / "bmc" / "vbmc"
    directory.mkdir(parents=True, exist_ok=True)
    conf = state.directory / "bmc" / "virtualbmc.conf"
    conf.write_text(
        f"[default]\nconfig_dir = {directory}\npid_file = {state.directory / 'bmc' / 'vbmcd.pid'}\n"
        f"server_port = {free_port()}\n[log]\nlogfile = {state.directory / 'logs' / 'vbmc.log'}\n"
    )
    env = {**os.environ, "VIRTUALBMC_CONFIG": str(conf)}
    proc = procs.start(state, "vbmcd", [program("vbmcd"), "--foreground"], env=env)
    log = state.directory / "logs" / "vbmcd.log"
    procs.wait_until("vbmcd", lambda: _list_works(env), proc, log, 60)
    ports = {}
    for name in domains:
        ports[name] = free_port(socket.SOCK_DGRAM)
        # --password=...: a password that starts with "-" (token_urlsafe makes those) is no option.
        _vbmc(env, "add", name, "--port", str(ports[name]), "--address", ADDRESS, "--username", USER,
              f"--password={password}", "--libvirt-uri", URI)  # fmt: skip
        _vbmc(env, "start", name)
    return ports


def _list_works(env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [program("vbmc"), "--no-daemon", "list"], capture_output=True, env=env, check=False, timeout=60
    )
    return proc.returncode == 0
