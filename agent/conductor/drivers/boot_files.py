"""Safe names and safe writes for boot files: strict MACs and UUIDs, nothing outside the configured dirs."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import jinja2

from agent.common import exception
from agent.common.config import CONF

_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What may appear in a URL or kernel parameter we render: no spaces or quotes, nothing iPXE or GRUB
# expands or splits on ($ ; # ( ) { }).
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._~:/?\[\]@!&*+,=%-]+$")
_PARAM_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")

TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render(template: str, **values: Any) -> str:
    """Render one of the boot templates (iPXE, PXELINUX, GRUB, dnsmasq.conf) with ``values``."""
    return _ENV.get_template(template).render(**values)


def normalize_mac(mac: Any, where: str = "") -> str:
    """``mac`` as lower-case aa:bb:cc:dd:ee:ff; InvalidParameterValue for anything else."""
    text = mac.strip().lower() if isinstance(mac, str) else None
    if not text or not _MAC.match(text):
        raise exception.InvalidParameterValue(
            err=f"{where}{mac!r} is not a MAC address (expected six hex pairs like aa:bb:cc:dd:ee:ff)."
        )
    return text.replace("-", ":")


def mac_hexhyp(mac: str) -> str:
    """A normalised MAC as aa-bb-cc-dd-ee-ff (iPXE's ${mac:hexhyp}, PXELINUX's file names)."""
    return normalize_mac(mac).replace(":", "-")


def node_uuid(node: Any) -> str:
    """The node's UUID, checked to be a canonical lower-case UUID (it names directories)."""
    value = getattr(node, "uuid", None)
    if not isinstance(value, str) or not _UUID.match(value):
        raise exception.InvalidParameterValue(err=f"Node UUID {value!r} is not a canonical lower-case UUID.")
    return str(uuidlib.UUID(value))


def check_token(value: Any, what: str, node: str) -> str:
    """A URL or kernel parameter value: non-empty, no whitespace, quotes or control characters."""
    if not isinstance(value, str) or not _SAFE_TOKEN.match(value):
        raise exception.InvalidParameterValue(
            err=f"Node {node}: {what} {value!r} is not usable on a boot command line "
            "(empty, or has spaces, quotes or control characters)."
        )
    return value


def check_param_key(key: Any, node: str) -> str:
    """A kernel parameter name: letters, digits, '_', '.', '-'."""
    if not isinstance(key, str) or not _PARAM_KEY.match(key):
        raise exception.InvalidParameterValue(
            err=f"Node {node}: kernel parameter name {key!r} is not allowed."
        )
    return key


def check_cmdline(text: Any, what: str, node: str) -> str:
    """Free kernel command-line text: printable, single line, no quotes or backslashes."""
    if not isinstance(text, str) or any(c in text for c in "\"'\\`") or not text.isprintable():
        raise exception.InvalidParameterValue(
            err=f"Node {node}: {what} {text!r} has quotes, backslashes or control characters."
        )
    return " ".join(text.split())


def safe_path(root: str, relpath: str) -> str:
    """``root``/``relpath`` with every symlink resolved, refused unless it stays inside ``root``."""
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, relpath))
    if os.path.commonpath([real_root, path]) != real_root or path == real_root:
        raise exception.InvalidParameterValue(
            err=f"Refusing to write {relpath!r}: it resolves to {path}, outside {real_root}."
        )
    return path


def _link_path(root: str, relpath: str) -> str:
    """Where a link named ``relpath`` goes: its directory resolved and checked, the name itself kept."""
    parent = safe_path(root, os.path.dirname(relpath)) if os.path.dirname(relpath) else os.path.realpath(root)
    name = os.path.basename(relpath)
    if name in ("", ".", "..") or "/" in name:
        raise exception.InvalidParameterValue(err=f"Refusing link name {relpath!r} under {root}.")
    return os.path.join(parent, name)


def write_error(path: str, exc: OSError) -> exception.BootFileWriteError:
    """A BootFileWriteError naming ``path`` and the cause (errno name); for a full disk, what to do."""
    name = errno.errorcode.get(exc.errno or 0, "")
    reason = f"{exc.strerror or exc} ({name})" if name else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += (
            "; the filesystem holding it is full: free space there "
            "([DEFAULT]state_path and its [pxe] and [dnsmasq] directories)"
        )
    return exception.BootFileWriteError(path=path, reason=reason)


@contextlib.contextmanager
def _temp_beside(path: str, prefix: str = ".kiln-") -> Iterator[tuple[int, str]]:
    """A temp file (fd, name) beside ``path``, removed if the block fails; OSError: BootFileWriteError."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=prefix)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        yield fd, tmp
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def write_file(root: str, relpath: str, content: str, mode: int = 0o644) -> str:
    """Write ``content`` to ``root``/``relpath`` atomically (temp file + rename); return the path.

    A failure (a full filesystem: ENOSPC) raises BootFileWriteError naming the path, leaves the file
    as it was and no temp file behind.
    """
    path = _checked_path(root, relpath)
    with _temp_beside(path) as (fd, tmp):
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    return path


def copy_file(source: str, root: str, relpath: str, mode: int = 0o644) -> str:
    """Copy the file ``source`` to ``root``/``relpath`` atomically, as ``write_file`` does; its path."""
    path = _checked_path(root, relpath)
    with _temp_beside(path) as (fd, tmp):
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    return path


def _checked_path(root: str, relpath: str) -> str:
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise write_error(os.path.join(root, relpath), exc) from exc
    return _link_path(root, relpath)


def link(root: str, relpath: str, target: str) -> str:
    """Make ``root``/``relpath`` a relative symlink to the file ``root``/``target`` (atomically replaced)."""
    path = _checked_path(root, relpath)
    target_path = safe_path(root, target)
    rel = os.path.relpath(target_path, os.path.dirname(path))
    tmp = os.path.join(os.path.dirname(path), f".kiln-link-{uuidlib.uuid4().hex}")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(rel, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise write_error(path, exc) from exc
    return path


def remove(root: str, relpath: str) -> bool:
    """Remove the file or link ``root``/``relpath`` (never what a link points to); whether it existed."""
    if not os.path.isdir(root):
        return False
    path = _link_path(root, relpath)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def remove_dir(root: str, relpath: str) -> None:
    """Remove the directory ``root``/``relpath`` and the files in it (one level, no links followed)."""
    if not os.path.isdir(root):
        return
    path = _link_path(root, relpath)
    if os.path.islink(path) or not os.path.isdir(path):
        return
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


def boot_mode(node: Any) -> str:
    """The node's boot mode from instance_info, driver_internal_info or capabilities, else the default."""
    instance = getattr(node, "instance_info", None) or {}
    internal = getattr(node, "driver_internal_info", None) or {}
    mode = instance.get("deploy_boot_mode") or internal.get("boot_mode")
    if not mode:
        caps = (getattr(node, "properties", None) or {}).get("capabilities") or ""
        if isinstance(caps, dict):
            mode = caps.get("boot_mode")
        else:
            for item in str(caps).split(","):
                key, _, value = item.partition(":")
                if key.strip() == "boot_mode":
                    mode = value.strip()
    mode = (mode or CONF.pxe.default_boot_mode).lower()
    if mode not in ("uefi", "bios"):
        raise exception.InvalidParameterValue(
            err=f"Node {getattr(node, 'uuid', '?')}: boot mode {mode!r} is not uefi or bios."
        )
    return mode
