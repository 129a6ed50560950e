"""finalize_rescue: let user ``rescue`` log in to the ramdisk with the operator's rescue password.

The conductor sends only the password's crypt(3) hash ($5$ sha256-crypt or $6$ sha512-crypt, as
Ironic makes it); it goes into <root>/etc/shadow (the ramdisk's own, or a simulated node's tree),
and user ``rescue`` is added to <root>/etc/passwd when missing. Both files are replaced atomically;
the hash is never logged nor returned.
"""

from __future__ import annotations

import os
import re
import tempfile
import time

from agent.node.steps.context import StepContext
from agent.node.steps.errors import StepError

USER = "rescue"
# crypt(3) SHA-crypt: $5$ or $6$, optional rounds=N$, salt, hash; nothing that could break a shadow line.
_HASH_RE = re.compile(r"\$[56]\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43,86}")
_FIRST_UID = 1000


def _root(ctx: StepContext) -> str:
    return ctx.opts.root or ctx.conf.inventory.root or "/"


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def _replace(path: str, lines: list[str], mode: int) -> None:
    """Write ``lines`` to ``path`` atomically, keeping its mode (``mode`` when it is new)."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kiln-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ensure_user(passwd: str) -> None:
    lines = _read_lines(passwd)
    if any(line.split(":", 1)[0] == USER for line in lines):
        return
    uids = {int(f[2]) for f in (line.split(":") for line in lines) if len(f) > 2 and f[2].isdigit()}
    uid = _FIRST_UID
    while uid in uids:
        uid += 1
    lines.append(f"{USER}:x:{uid}:{uid}:Kiln rescue user:/:/bin/sh")
    _replace(passwd, lines, 0o644)


def set_shadow_hash(root: str, hashed: str) -> str:
    """Put ``hashed`` as user rescue's password in <root>/etc/shadow; return the file's path."""
    if not isinstance(hashed, str) or not _HASH_RE.fullmatch(hashed):
        raise StepError("finalize_rescue: rescue_password_hash must be a $5$ or $6$ crypt(3) hash")
    etc = os.path.join(root, "etc")
    _ensure_user(os.path.join(etc, "passwd"))
    shadow = os.path.join(etc, "shadow")
    days = int(time.time() // 86400)
    entry = f"{USER}:{hashed}:{days}:0:99999:7:::"
    lines = [line for line in _read_lines(shadow) if line.split(":", 1)[0] != USER]
    lines.append(entry)
    _replace(shadow, lines, 0o600)
    return shadow


def finalize_rescue(ctx: StepContext, args: dict) -> dict:
    """Set user rescue's password hash from ``args["rescue_password_hash"]``."""
    shadow = set_shadow_hash(_root(ctx), args.get("rescue_password_hash"))
    return {"user": USER, "shadow": shadow}
