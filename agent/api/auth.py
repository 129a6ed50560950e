"""Authentication: noauth, HTTP Basic against a bcrypt htpasswd file, or Keystone (auth_token).

Each strategy leaves the caller's identity in the WSGI environ (the same X-* keys keystonemiddleware
sets); ``context_from_environ`` turns it into the RPC context and the project scope of the request.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable

import bcrypt
from oslo_config import cfg

from agent.api import errors

CONF = cfg.CONF

# Paths served without authentication (version discovery), as in Ironic.
PUBLIC_PATHS = ("/", "/v1")

_IDENTITY_KEYS = (
    "HTTP_X_IDENTITY_STATUS",
    "HTTP_X_USER_ID",
    "HTTP_X_USER_NAME",
    "HTTP_X_PROJECT_ID",
    "HTTP_X_PROJECT_NAME",
    "HTTP_X_ROLES",
    "HTTP_X_SYSTEM_SCOPE",
    "HTTP_OPENSTACK_SYSTEM_SCOPE",
)
# keystonemiddleware's header for a system-scoped token (OpenStack-System-Scope: all).
SYSTEM_SCOPE_KEY = "HTTP_OPENSTACK_SYSTEM_SCOPE"


def is_public(path: str) -> bool:
    """Whether ``path`` is served without authentication."""
    return (path.rstrip("/") or "/") in PUBLIC_PATHS


def strip_identity(environ: dict) -> None:
    """Drop identity headers a client sent itself (only the auth layer may set them)."""
    for key in _IDENTITY_KEYS:
        environ.pop(key, None)


class HtpasswdFile:
    """bcrypt entries of an htpasswd file, re-read when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._users: dict[str, bytes] = {}

    def _load(self) -> dict[str, bytes]:
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            raise errors.HTTPServiceUnavailable(
                f"HTTP Basic authentication is configured but the user file {self.path} cannot be read: "
                f"{exc.strerror}; fix [DEFAULT]http_basic_auth_user_file."
            ) from None
        with self._lock:
            if mtime != self._mtime:
                users: dict[str, bytes] = {}
                with open(self.path, encoding="utf-8") as handle:
                    for line in handle:
                        line = line.strip()
                        if not line or line.startswith("#") or ":" not in line:
                            continue
                        user, _, hashed = line.partition(":")
                        users[user] = hashed.encode()
                self._users, self._mtime = users, mtime
            return self._users

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` matches ``user``'s bcrypt entry ($2y$, $2b$ or $2a$)."""
        hashed = self._load().get(user)
        if hashed is None or not hashed.startswith((b"$2y$", b"$2b$", b"$2a$")):
            return False
        try:
            return bcrypt.checkpw(
                password.encode(), b"$2b$" + hashed[4:] if hashed.startswith(b"$2y$") else hashed
            )
        except ValueError:
            return False


def _unauthorized(message: str) -> errors.HTTPUnauthorized:
    return errors.HTTPUnauthorized(message, headers={"WWW-Authenticate": 'Basic realm="Baremetal API"'})


class BasicAuthMiddleware:
    """HTTP Basic authentication; an authenticated user is an administrator (as in Ironic)."""

    def __init__(self, app: Callable, user_file: str, on_error: Callable) -> None:
        self.app = app
        self.users = HtpasswdFile(user_file)
        self.on_error = on_error

    def _authenticate(self, environ: dict) -> str:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise _unauthorized("Authorization required: send HTTP Basic credentials.")
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("Malformed HTTP Basic credentials: not base64 of user:password.") from None
        if not sep or not self.users.check(user, password):
            raise _unauthorized(f"Invalid credentials for user {user!r}.")
        return user

    def __call__(self, environ: dict, start_response: Callable):
        strip_identity(environ)
        if not is_public(environ.get("PATH_INFO", "/")):
            try:
                user = self._authenticate(environ)
            except errors.ApiError as exc:
                return self.on_error(exc, environ, start_response)
            environ.update(
                HTTP_X_IDENTITY_STATUS="Confirmed",
                HTTP_X_USER_NAME=user,
                HTTP_X_USER_ID=user,
                HTTP_X_ROLES="admin,member,reader",
                HTTP_OPENSTACK_SYSTEM_SCOPE="all",
            )
        return self.app(environ, start_response)


class NoAuthMiddleware:
    """No authentication: every caller is an administrator; identity headers from clients are dropped."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        strip_identity(environ)
        environ.update(HTTP_X_ROLES="admin,member,reader", HTTP_OPENSTACK_SYSTEM_SCOPE="all")
        return self.app(environ, start_response)


class KeystonePublicPaths:
    """keystonemiddleware.auth_token in front of the app, skipped for version discovery."""

    def __init__(self, app: Callable) -> None:
        from keystonemiddleware import auth_token

        self.app = app
        self.protected = auth_token.AuthProtocol(app, {"oslo_config_config": CONF})

    def __call__(self, environ: dict, start_response: Callable):
        if is_public(environ.get("PATH_INFO", "/")):
            strip_identity(environ)
            return self.app(environ, start_response)
        return self.protected(environ, start_response)


def wrap(app: Callable, strategy: str, on_error: Callable) -> Callable:
    """Put the authentication layer of ``strategy`` in front of ``app``."""
    if strategy == "noauth":
        return NoAuthMiddleware(app)
    if strategy == "http_basic":
        return BasicAuthMiddleware(app, CONF.http_basic_auth_user_file, on_error)
    if strategy == "keystone":
        return KeystonePublicPaths(app)
    raise ValueError(f"Unknown [DEFAULT]auth_strategy {strategy!r}; use noauth, http_basic or keystone.")


# Keystone's default role implications: a token lists the implied roles too; headers set by
# http_basic, noauth or a test may not, so the API applies them as well.
_IMPLIED = {"admin": ("member", "reader"), "manager": ("member", "reader"), "member": ("reader",)}


def context_from_environ(environ: dict, request_id: str) -> dict:
    """Return the request context: request_id, user, project, roles, system_scope and is_admin.

    What the caller may see and do is decided by oslo.policy (agent.api.policy) from these;
    ``is_admin`` (a system-scoped token) is what the conductor sees.
    """
    roles = [r.strip().lower() for r in environ.get("HTTP_X_ROLES", "").split(",") if r.strip()]
    roles += [implied for r in list(roles) for implied in _IMPLIED.get(r, ()) if implied not in roles]
    system_scope = environ.get(SYSTEM_SCOPE_KEY) or None
    project = environ.get("HTTP_X_PROJECT_ID") or None
    return {
        "request_id": request_id,
        "user": environ.get("HTTP_X_USER_ID") or environ.get("HTTP_X_USER_NAME"),
        "user_id": environ.get("HTTP_X_USER_ID") or None,
        "project_id": project,
        "project_name": environ.get("HTTP_X_PROJECT_NAME") or None,
        "roles": sorted(set(roles)),
        "system_scope": system_scope,
        "is_admin": system_scope == "all",
    }
