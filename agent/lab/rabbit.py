"""The lab's RabbitMQ vhost and user (guest may only connect from localhost; the VMs are not)."""

from __future__ import annotations

import shutil
import subprocess

VHOST = "kiln-lab"
USER = "kiln-lab"


def _ctl(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        raise RuntimeError("rabbitmqctl is not installed: apt-get install -y rabbitmq-server")
    proc = subprocess.run(
        [ctl, "-q", *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}; "
            "is RabbitMQ running? (rabbitmq-server -detached)"
        )
    return proc


def create(password: str) -> None:
    """The vhost, and a user with all rights on it and no other."""
    _ctl("add_vhost", VHOST)
    # On standard input: a password on the command line is visible to every user, and one that
    # starts with "-" (token_urlsafe makes those) would be read as an option.
    _ctl("add_user", USER, stdin=password + "\n")
    _ctl("set_permissions", "-p", VHOST, USER, ".*", ".*", ".*")


def destroy() -> list[str]:
    """Delete the lab's user and vhost; return what was there."""
    removed = []
    if _ctl("delete_user", USER, check=False).returncode == 0:
        removed.append(f"rabbitmq user {USER}")
    if _ctl("delete_vhost", VHOST, check=False).returncode == 0:
        removed.append(f"rabbitmq vhost {VHOST}")
    return removed


def exists() -> bool:
    """Whether the lab's vhost exists."""
    return VHOST in _ctl("list_vhosts", "name").stdout.split()


def transport_url(password: str, host: str) -> str:
    """The oslo.messaging URL of the lab's vhost on ``host``."""
    return f"rabbit://{USER}:{password}@{host}:5672/{VHOST}"
