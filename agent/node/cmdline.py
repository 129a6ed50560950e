"""What the boot interface put on the agent's kernel command line, read and checked strictly.

The ipxe and pxe boot interfaces add ``kiln.node_uuid=<uuid>``, then ``kiln.config_url=<http(s) URL>``
or ``kiln.transport_url=<oslo.messaging URL>``, and the firmware or boot loader adds
``BOOTIF=01-aa-bb-cc-dd-ee-ff`` (PXELINUX's ``ipappend 2``, iPXE's ``${mac:hexhyp}``). The agent token
is never on the command line: the agent gets it at lookup over RPC.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import netutils

from agent.node.backoff import Backoff, retry

LOG = logging.getLogger(__name__)

NODE_UUID = "kiln.node_uuid"
CONFIG_URL = "kiln.config_url"
TRANSPORT_URL = "kiln.transport_url"
CONFIG_KEY = "kiln.config_key"
BOOTIF = "BOOTIF"
KNOWN = (NODE_UUID, CONFIG_URL, TRANSPORT_URL, CONFIG_KEY, BOOTIF)

FETCHED_CONFIG = "kiln-agent.config-url.conf"
"""The file in the agent's state dir that holds the configuration fetched from kiln.config_url."""
MAX_CONFIG_BYTES = 1024 * 1024

_BOOTIF = re.compile(r"^01-[0-9a-f]{2}(?:-[0-9a-f]{2}){5}$")  # ARP type 1 (Ethernet), then the MAC
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_WORD = re.compile(r'(?:[^\s"]+|"[^"]*")+')
# Transports that need no broker host.
_HOSTLESS = {"fake", "kombu+memory"}


class BootParamError(ValueError):
    """A kernel command-line parameter is garbled, or what it points to is unusable."""


@dataclass(frozen=True)
class BootParams:
    """The Kiln parameters of one kernel command line (None: not given)."""

    node_uuid: str | None = None
    config_url: str | None = None
    transport_url: str | None = None
    config_key: str | None = None
    bootif: str | None = None
    source: str = "/proc/cmdline"


def split_cmdline(text: str) -> list[str]:
    """The kernel command line's words as the kernel splits them (double quotes group, then vanish)."""
    before, sep, _after = text.partition(" -- ")  # what follows "--" is init's, not the kernel's
    words = _WORD.findall(before if sep else text)
    return [w.replace('"', "") for w in words]


def _fail(name: str, value: str, source: str, why: str) -> BootParamError:
    shown = mask_url(value) if name in (TRANSPORT_URL, CONFIG_URL) else value
    return BootParamError(f"kernel command line parameter {name}={shown!r} in {source} {why}")


def mask_url(url: str) -> str:
    """``url`` with any password in it replaced by ***."""
    return re.sub(r"(?<=[:/,])([^:/@,]*):([^@/]*)@", r"\1:***@", url)


def check_node_uuid(value: str, source: str = "/proc/cmdline") -> str:
    """A canonical UUID (case-insensitive), returned lower-case."""
    text = value.strip().lower()
    if not _UUID.match(text):
        raise _fail(NODE_UUID, value, source, "is not a UUID (expected 8-4-4-4-12 hex digits)")
    return str(uuidlib.UUID(text))


def check_bootif(value: str, source: str = "/proc/cmdline") -> str:
    """PXELINUX's and iPXE's ``01-aa-bb-cc-dd-ee-ff`` as aa:bb:cc:dd:ee:ff."""
    text = value.strip().lower()
    if not _BOOTIF.match(text):
        raise _fail(BOOTIF, value, source, "is not 01- and a MAC address (expected 01-aa-bb-cc-dd-ee-ff)")
    return text[3:].replace("-", ":")


def check_config_url(value: str, source: str = "/proc/cmdline") -> str:
    """An http:// or https:// URL with a host."""
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _fail(CONFIG_URL, value, source, "is not an http:// or https:// URL with a host")
    try:
        parsed.port  # noqa: B018 - raises on a garbled port
    except ValueError:
        raise _fail(CONFIG_URL, value, source, "has a port that is not a number in 1-65535") from None
    return value


def check_config_key(value: str, source: str = "/proc/cmdline") -> str:
    """Url-safe base64 of a raw 32-byte ed25519 public key (the key the served config is signed with)."""
    text = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", text):
        raise _fail(CONFIG_KEY, value, source, "is not url-safe base64 of a 32-byte ed25519 public key")
    return text


def transport_drivers() -> set[str]:
    """The oslo.messaging driver names installed here (rabbit, kombu, kafka, fake, ...)."""
    return {ep.name for ep in entry_points(group="oslo.messaging.drivers")}


def check_transport_url(value: str, source: str = "/proc/cmdline") -> str:
    """An oslo.messaging transport URL of an installed driver, with well-formed broker hosts."""
    parsed = urllib.parse.urlsplit(value)
    scheme = parsed.scheme
    drivers = transport_drivers()
    if not scheme or scheme.split("+", 1)[0] not in drivers:
        raise _fail(
            TRANSPORT_URL,
            value,
            source,
            f"does not start with a messaging driver ({', '.join(sorted(drivers))}), e.g. rabbit://",
        )
    hosts = [h for h in parsed.netloc.split(",") if h]
    if not hosts and scheme not in _HOSTLESS:
        raise _fail(TRANSPORT_URL, value, source, "names no broker host")
    for host in hosts:
        hostport = host.rsplit("@", 1)[-1]
        try:
            name, port = netutils.parse_host_port(hostport)
        except ValueError:
            name, port = None, None
        if not name or (port is not None and not 0 < int(port) < 65536):
            raise _fail(TRANSPORT_URL, value, source, f"has a garbled broker address {mask_url(hostport)!r}")
    return value


_CHECKS = {
    NODE_UUID: check_node_uuid,
    CONFIG_URL: check_config_url,
    TRANSPORT_URL: check_transport_url,
    CONFIG_KEY: check_config_key,
    BOOTIF: check_bootif,
}
_FIELDS = {
    NODE_UUID: "node_uuid",
    CONFIG_URL: "config_url",
    TRANSPORT_URL: "transport_url",
    CONFIG_KEY: "config_key",
    BOOTIF: "bootif",
}


def parse_boot_params(text: str, source: str = "/proc/cmdline") -> BootParams:
    """Kiln's parameters from a kernel command line; BootParamError naming the first garbled one.

    A parameter given twice with different values is refused: which one the operator meant is unknown.
    Other kiln.* parameters (the operator's ramdisk parameters) are left alone.
    """
    found: dict[str, str] = {}
    for word in split_cmdline(text):
        name, sep, value = word.partition("=")
        if name not in _CHECKS:
            continue
        if not sep or not value:
            raise _fail(name, value, source, "has no value")
        checked = _CHECKS[name](value, source)
        if name in found and found[name] != checked:
            raise BootParamError(
                f"kernel command line parameter {name} is given twice in {source} with different values"
            )
        found[name] = checked
    return BootParams(source=source, **{_FIELDS[k]: v for k, v in found.items()})


def read_boot_params(root: str) -> BootParams:
    """The parameters of ``<root>/proc/cmdline``; none when the file is missing (a captured tree)."""
    path = os.path.join(root or "/", "proc", "cmdline")
    try:
        with open(path, "rb") as stream:
            raw = stream.read(65536)
    except FileNotFoundError:
        return BootParams(source=path)
    except OSError as exc:
        raise BootParamError(f"cannot read the kernel command line {path}: {exc}") from exc
    text = raw.replace(b"\0", b" ").decode("utf-8", errors="replace")
    return parse_boot_params(text, path)


# --- kiln.config_url ---------------------------------------------------------------------------


class _Transient(Exception):
    """A fetch failure worth retrying (no connection, timeout, server error)."""


def _download(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "kiln-agent"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) checked
            body = answer.read(MAX_CONFIG_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise BootParamError(
            f"fetching {CONFIG_URL}={url} failed: HTTP {exc.code} {exc.reason}; "
            "check [pxe]agent_config_url on the conductor and the file it names"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _Transient(str(getattr(exc, "reason", exc))) from exc
    if len(body) > MAX_CONFIG_BYTES:
        raise BootParamError(f"{CONFIG_URL}={url} is larger than {MAX_CONFIG_BYTES} bytes: not a config file")
    return body


def _check_ini(path: str, url: str) -> None:
    """Parse the fetched file as oslo.config will; BootParamError naming the URL and line."""
    try:
        cfg.ConfigParser(path, {}).parse()
    except (cfg.ParseError, UnicodeDecodeError) as exc:
        raise BootParamError(f"{CONFIG_URL}={url} is not an oslo.config ini file: {exc}") from None


def fetch_config(
    url: str,
    state_dir: str,
    *,
    timeout: float = 10.0,
    attempts: int = 0,
    backoff: Backoff | None = None,
    stop: threading.Event | None = None,
    public_key: object | None = None,
) -> str:
    """Download the ini at ``url`` into ``state_dir`` (mode 0600), check it parses; return its path.

    Connection failures, timeouts and 5xx answers are retried (``attempts`` 0: until ``stop``);
    a 4xx answer, an oversized or garbled file fail at once with BootParamError. With
    ``public_key`` (an ed25519 public key), the file must carry a valid signature
    (agent.common.config_signing), else ConfigSignatureError (a ValueError).
    """
    check_config_url(url)
    body = retry(
        lambda: _download(url, timeout),
        what=f"fetching {CONFIG_URL}={url}",
        stop=stop or threading.Event(),
        backoff=backoff or Backoff(),
        attempts=attempts,
        retry_on=(_Transient,),
    )
    if public_key is not None:
        from agent.common import config_signing  # cryptography: only when a key asks for it

        body = config_signing.verify_config(body, public_key, f"{CONFIG_URL}={url}")
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, FETCHED_CONFIG)
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".kiln-config-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(body)
        _check_ini(tmp, url)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    LOG.info(
        "Fetched the agent configuration from %s into %s%s",
        url,
        path,
        " (signature checked)" if public_key else "",
    )
    return path
