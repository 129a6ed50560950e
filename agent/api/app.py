"""The WSGI application: version negotiation, routing, errors in Ironic's shape, authentication."""

from __future__ import annotations

from collections.abc import Callable

import oslo_messaging as messaging
import webob
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.api import auth, base, errors, router, versions
from agent.api.controllers import (
    allocations,
    bmc,
    chassis,
    conductors,
    deploy_templates,
    drivers,
    inspection_rules,
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
    bmc,
    shards_events,
    turnover,
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


class ApiApp:
    """Serves Ironic's REST API v1 from the database (reads) and the conductors (changes)."""

    def __init__(self, rpcapi) -> None:
        self.rpcapi = rpcapi
        self.router = router.Router()
        for module in _CONTROLLERS:
            module.register(self.router)

    def _dispatch(self, req: base.ApiRequest) -> webob.Response:
        path = req.path_info or "/"
        try:
            req.version = versions.negotiate(req.headers)
        except errors.ApiError:
            if path != "/":
                raise
            req.version = versions.MIN_VERSION
        handler, params = self.router.match(req.method, path)
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
    return auth.wrap(app, auth_strategy or CONF.auth_strategy, app.error_app)
