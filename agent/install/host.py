"""Host set-up steps of kiln-setup: the system user, /etc/kiln/kiln.conf and the first admin credential.

Each step is a function of its own so that it can be tested alone; ``agent.cmd.setup`` runs them in order.
"""

from __future__ import annotations

import configparser
import grp
import importlib
import io
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

#: The system user (and group) kiln-api and kiln-conductor run as; kiln-agent runs as root.
SERVICE_USER = "kiln"
SYSUSERS_FILE = Path("/etc/sysusers.d/kiln.conf")
SYSUSERS_TEXT = (
    "# Kiln's services (kiln-api, kiln-conductor); written by kiln-setup.\n"
    f'u {SERVICE_USER} - "Kiln bare-metal provisioning" /var/lib/kiln\n'
)
#: State directories the units' StateDirectory= create: one per service, as they run as different users.
CONDUCTOR_STATE = "/var/lib/kiln/conductor"
AGENT_STATE = "/var/lib/kiln/agent"
#: Database drivers by URL dialect: (module to import, the pip extra that installs it).
DRIVERS = {"postgresql": ("psycopg2", "postgresql"), "mysql": ("pymysql", "mysql")}


class SetupError(Exception):
    """A set-up step failed; the message says which and what to change."""


@dataclass
class Settings:
    """What kiln-setup was asked to install."""

    database_url: str
    transport_url: str
    admin_user: str = "admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    api_host: str = "0.0.0.0"
    api_port: int = 6385
    options: list[tuple[str, str, str]] = field(default_factory=list)  # (section, option, value)
    config_dir: Path = Path("/etc/kiln")

    @property
    def config_file(self) -> Path:
        """The kiln.conf the services read."""
        return self.config_dir / "kiln.conf"

    @property
    def htpasswd_file(self) -> Path:
        """The bcrypt htpasswd file of kiln-api's http_basic auth."""
        return self.config_dir / "htpasswd"

    @property
    def openrc_file(self) -> Path:
        """The admin's client environment (OS_* variables), mode 0600."""
        return self.config_dir / "admin-openrc"

    @property
    def api_endpoint(self) -> str:
        """The URL a client on this host reaches kiln-api at."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"http://{host}:{self.api_port}"


def parse_option(text: str) -> tuple[str, str, str]:
    """Split ``SECTION.OPTION=VALUE`` (``DEFAULT.debug=true``) into its three parts."""
    key, sep, value = text.partition("=")
    section, dot, option = key.strip().rpartition(".")
    if not sep or not dot or not section or not option:
        raise SetupError(f"--set {text!r}: write SECTION.OPTION=VALUE, e.g. DEFAULT.debug=true")
    return section, option, value.strip()


def check_database_url(url: str) -> str:
    """Validate ``url`` and that its driver is installed; return its dialect (postgresql or mysql)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SetupError(f"--database-url {url!r} is not a database URL: {exc}") from None
    dialect = parsed.get_backend_name()
    if dialect not in DRIVERS:
        raise SetupError(
            f"--database-url uses {dialect!r}; kiln-setup installs on PostgreSQL "
            "(postgresql+psycopg2://USER:PASS@HOST/DB) or MySQL/MariaDB (mysql+pymysql://USER:PASS@HOST/DB)"
        )
    module, extra = DRIVERS[dialect]
    driver = parsed.get_driver_name()
    if driver != module:
        raise SetupError(f"--database-url names driver {driver!r}; use {dialect}+{module}://...")
    try:
        importlib.import_module(module)
    except ImportError:
        raise SetupError(
            f"the {dialect} driver {module} is not installed in this environment: pip install 'kiln[{extra}]'"
        ) from None
    return dialect


def check_transport_url(url: str) -> None:
    """Validate the oslo.messaging transport URL (rabbit://USER:PASS@HOST:PORT/VHOST)."""
    import oslo_messaging
    from oslo_config import cfg

    try:
        oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url)
    except oslo_messaging.InvalidTransportURL as exc:
        raise SetupError(f"--transport-url is invalid: {exc}") from None
    if not url.startswith("rabbit://"):
        raise SetupError(f"--transport-url {url.split(':', 1)[0]}://...: Kiln is tested with rabbit:// only")


def run(argv: list[str], what: str, timeout: float = 300) -> str:
    """Run ``argv``; its output, or SetupError naming ``what`` with the command's own message."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SetupError(f"{what}: {argv[0]} not found; is this a systemd host?") from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what}: {' '.join(argv)} did not finish in {timeout:.0f} s") from None
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip())[-3000:]
        raise SetupError(f"{what}: {' '.join(argv)} exited with {done.returncode}:\n{output}")
    return done.stdout


def create_user(sysusers_file: Path = SYSUSERS_FILE) -> None:
    """Write the sysusers.d file for the ``kiln`` user and have systemd-sysusers create it."""
    sysusers_file.parent.mkdir(parents=True, exist_ok=True)
    sysusers_file.write_text(SYSUSERS_TEXT)
    run(["systemd-sysusers", str(sysusers_file)], f"creating the {SERVICE_USER} user")


def _write(path: Path, text: str, mode: int, group: str | None = None) -> None:
    """Write ``text`` to ``path`` with ``mode`` (set before the content goes in) and owner root:group."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        if group is not None:
            os.fchown(handle.fileno(), 0, grp.getgrnam(group).gr_gid)
        handle.write(text)


def render_config(settings: Settings) -> str:
    """The text of kiln.conf: database, transport, API and auth, state directories, then --set options."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment] - keep option names as given
    conf["DEFAULT"] = {
        "transport_url": settings.transport_url,
        "state_path": CONDUCTOR_STATE,
        "auth_strategy": "http_basic",
        "http_basic_auth_user_file": str(settings.htpasswd_file),
        "use_stderr": "true",
    }
    conf["database"] = {"connection": settings.database_url}
    conf["api"] = {"host_ip": settings.api_host, "port": str(settings.api_port)}
    conf["agent"] = {"state_dir": AGENT_STATE}
    for section, option, value in settings.options:
        if section != "DEFAULT" and not conf.has_section(section):
            conf.add_section(section)
        conf.set(section, option, value)
    out = io.StringIO()
    out.write("# Written by kiln-setup; the options are described in kiln.conf.sample.\n")
    conf.write(out)
    return out.getvalue()


def write_config(settings: Settings) -> None:
    """Write kiln.conf, readable by root and the kiln group only (it holds the database password)."""
    _write(settings.config_file, render_config(settings), 0o640, SERVICE_USER)


def write_admin_credential(settings: Settings) -> None:
    """Put the admin into the htpasswd file (bcrypt, other users kept) and write admin-openrc (0600)."""
    if ":" in settings.admin_user or not settings.admin_user:
        raise SetupError(f"--admin-user {settings.admin_user!r}: a user name may not be empty or hold ':'")
    hashed = bcrypt.hashpw(settings.admin_password.encode(), bcrypt.gensalt()).decode()
    lines = []
    if settings.htpasswd_file.exists():
        lines = [
            line
            for line in settings.htpasswd_file.read_text().splitlines()
            if line.partition(":")[0] != settings.admin_user
        ]
    lines.append(f"{settings.admin_user}:$2y${hashed[4:]}")
    _write(settings.htpasswd_file, "\n".join(lines) + "\n", 0o640, SERVICE_USER)
    openrc = (
        "# kiln-api's administrator (HTTP Basic); source this file, then: baremetal node list\n"
        "export OS_AUTH_TYPE=http_basic\n"
        f"export OS_ENDPOINT={settings.api_endpoint}\n"
        f"export OS_USERNAME={settings.admin_user}\n"
        f"export OS_PASSWORD={settings.admin_password}\n"
    )
    _write(settings.openrc_file, openrc, 0o600)


def migrate(bindir: Path, settings: Settings) -> str:
    """Run ``kiln-dbsync upgrade`` against the configured database; its report line."""
    out = run(
        [str(bindir / "kiln-dbsync"), "--config-file", str(settings.config_file), "upgrade"],
        "migrating the database (kiln-dbsync)",
    )
    return out.strip()
