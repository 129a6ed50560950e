"""The WSGI application: version negotiation, routing, errors in Ironic's shape, authentication."""

from __future__ import annotations

from collections.abc import Callable

import oslo_messaging as messaging
import sqlalchemy.exc
import webob
import webob.exc
from oslo_config import cfg
from oslo_log import log as logging
from oslo_middleware import sizelimit
from oslo_utils import uuidutils

from agent.api import auth, base, errors, fleet_page, metrics, router, versions
from agent.api.controllers import (
    allocations,
    bmc,
    chassis,
    conductors,
    deploy_templates,
    drivers,
    inspection_rules,
    node_console,
    node_media,
    nodes,
    portgroups,
    ports,
    root,
    runbooks,
    shards_events,
    turnover,
    vifs,
    volume,
)
from agent.common import exception

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-OpenStack-Request-Id"
_CONTROLLERS = (
    root,
    nodes,
    ports,
    portgroups,
    vifs,
    allocations,
    drivers,
    conductors,
    chassis,
    volume,
    deploy_templates,
    runbooks,
    inspection_rules,
    node_media,
    node_console,
    bmc,
    shards_events,
    turnover,
    fleet_page,  # the read-only HTML fleet page, behind the same authentication
)


def error_response(code: int, faultstring: str, headers: dict | None = None) -> webob.Response:
    """Return an error response in Ironic's shape."""
    resp = webob.Response(status=code, headers=headers or {})
    resp.content_type = "application/json"
    resp.charset = None
    resp.body = errors.error_body(code, faultstring)
    return resp


def _remote_message(exc: BaseException) -> str:
    """The message of an exception, without the traceback oslo.messaging appends to remote ones."""
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc).split("\nTraceback", 1)[0]


#: Exceptions of a database that cannot be reached (down, restarting, connections cut, pool empty),
#: here and, by their class name, raised in a conductor and sent back over RPC.
DB_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError)
DB_DOWN_REMOTE = frozenset(cls.__name__ for cls in DB_DOWN) | {"DBConnectionError", "DisconnectionError"}
DB_DOWN_MESSAGE = (
    "The database is not reachable right now ({where}); the request may not have been carried out. "
    "Check and retry it in a few seconds."
)

RETRY = {"Retry-After": "5"}


def _db_down(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (not a bad query)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DB_DOWN)


def limit_body(req: webob.Request, limit: int) -> None:
    """413 for a body larger than ``limit`` bytes: at once by its Content-Length, else while it is read."""
    if req.content_length is not None and req.content_length > limit:
        raise errors.HTTPRequestEntityTooLarge(_too_large(req.content_length, limit))
    if req.content_length is None and req.is_body_readable:
        req.body_file = sizelimit.LimitingReader(req.body_file, limit)


def _too_large(size: int | None, limit: int) -> str:
    got = f"{size} bytes" if size is not None else "a chunked body"
    return f"The request body is too large: {got}, more than [api]max_request_body_size ({limit} bytes)."


class ApiApp:
    """Serves Ironic's REST API v1 from the database (reads) and the conductors (changes)."""

    def __init__(self, rpcapi) -> None:
        self.rpcapi = rpcapi
        self.router = router.Router()
        for module in _CONTROLLERS:
            module.register(self.router)

    def _dispatch(self, req: base.ApiRequest) -> webob.Response:
        limit_body(req, CONF.api.max_request_body_size)
        try:
            path = req.path_info or "/"
            req.GET  # noqa: B018 - decoded here, so a bad query string is answered 400 by name
        except UnicodeDecodeError:
            raise errors.HTTPBadRequest(
                "The request's path or query string is not valid UTF-8 once percent-decoded."
            ) from None
        try:
            req.version = versions.negotiate(req.headers)
        except errors.ApiError:
            if path != "/":
                raise
            req.version = versions.MIN_VERSION
        handler, params, template = self.router.match_route(req.method, path)
        req.environ[metrics.ROUTE_KEY] = template
        return handler(req, **params)

    def __call__(self, environ: dict, start_response: Callable):
        req = base.ApiRequest(environ)
        request_id = req.headers.get(REQUEST_ID_HEADER) or f"req-{uuidutils.generate_uuid()}"
        if not request_id.startswith("req-") or len(request_id) > 64:
            request_id = f"req-{uuidutils.generate_uuid()}"
        req.context = auth.context_from_environ(environ, request_id)
        req.rpcapi = self.rpcapi
        try:
            resp = self._dispatch(req)
        except errors.ApiError as exc:
            resp = error_response(exc.code, exc.faultstring, exc.headers)
        except webob.exc.HTTPRequestEntityTooLarge:  # from sizelimit's reader, reading a chunked body
            resp = error_response(413, _too_large(None, CONF.api.max_request_body_size))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if not _db_down(exc):
                LOG.exception("Database error serving %s %s", req.method, req.path)
                resp = error_response(500, "Internal server error; the kiln-api log has the details.")
            else:
                LOG.warning(
                    "Database unreachable serving %s %s: %s", req.method, req.path, type(exc).__name__
                )
                resp = error_response(503, DB_DOWN_MESSAGE.format(where="kiln-api"), RETRY)
        except exception.ConductorNotFound as exc:
            resp = error_response(503, f"No valid host was found. Reason: {_remote_message(exc)}")
        except exception.KilnException as exc:
            resp = error_response(getattr(exc, "code", 500) or 500, _remote_message(exc))
        except messaging.MessagingTimeout:
            resp = error_response(
                503,
                f"No conductor answered within {CONF.api.rpc_timeout} s; check that kiln-conductor is "
                "running and reachable over the message bus, then retry.",
            )
        except messaging.RemoteError as exc:
            if exc.exc_type in DB_DOWN_REMOTE:
                LOG.warning("Conductor's database unreachable: %s %s: %s", req.method, req.path, exc.exc_type)
                resp = error_response(503, DB_DOWN_MESSAGE.format(where="kiln-conductor"), RETRY)
            else:
                LOG.error("Conductor error for %s %s: %s", req.method, req.path, exc)
                resp = error_response(500, f"The conductor failed: {exc.exc_type}: {exc.value}")
        except Exception:
            LOG.exception("Unexpected error serving %s %s", req.method, req.path)
            resp = error_response(500, "Internal server error; the kiln-api log has the details.")
        version = getattr(req, "version", None)
        resp.headers.update(versions.response_headers(version))
        resp.headers[REQUEST_ID_HEADER] = request_id
        return resp(environ, start_response)

    def error_app(self, exc: errors.ApiError, environ: dict, start_response: Callable):
        """Answer an error raised before the app (authentication), with the usual headers."""
        resp = error_response(exc.code, exc.faultstring, exc.headers)
        resp.headers.update(versions.response_headers(None))
        return resp(environ, start_response)


def build_app(rpcapi=None, auth_strategy: str | None = None) -> Callable:
    """Return the WSGI app with the configured authentication in front."""
    if rpcapi is None:
        from agent.conductor import rpcapi as conductor_rpcapi

        rpcapi = conductor_rpcapi.ConductorAPI(timeout=CONF.api.rpc_timeout)
    app = ApiApp(rpcapi)
    strategy = auth_strategy or CONF.auth_strategy
    return metrics.wrap(auth.wrap(app, strategy, app.error_app), strategy, app.error_app)
