"""kiln-api's /metrics: the fleet read from the database, and the API's own request times.

Request times are labelled by the route template that served them (/v1/nodes/{node_ident}), never
by the path itself, so a fleet of any size gives the same few series. /metrics sits behind the
API's authentication and is served to administrators only, unless [api]metrics_auth is off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from oslo_config import cfg
from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.process_collector import ProcessCollector

from agent.api import auth, errors
from agent.metrics.fleet import FleetCollector

CONF = cfg.CONF
PATH = "/metrics"
#: WSGI environ key where the app leaves the route template it matched.
ROUTE_KEY = "kiln.route"
#: Route label of requests no route served (unknown paths, refused before routing).
NO_ROUTE = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REGISTRY = CollectorRegistry(auto_describe=True)
FLEET = FleetCollector()
REGISTRY.register(FLEET)
ProcessCollector(registry=REGISTRY)
REQUEST_SECONDS = Histogram(
    "kiln_api_request_duration_seconds",
    "Seconds kiln-api took to answer a request, by method, route template and status code.",
    ["method", "route", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf")),
    registry=REGISTRY,
)


class AdminOnly:
    """Answer 403 to an authenticated caller who is not an administrator."""

    def __init__(self, app: Callable, on_error: Callable) -> None:
        self.app = app
        self.on_error = on_error

    def __call__(self, environ: dict, start_response: Callable):
        if not auth.context_from_environ(environ, "")["is_admin"]:
            exc = errors.HTTPForbidden("/metrics is served to administrators only.")
            return self.on_error(exc, environ, start_response)
        return self.app(environ, start_response)


class MetricsMiddleware:
    """Times every request of ``app`` and serves ``metrics_app`` at /metrics."""

    def __init__(self, app: Callable, metrics_app: Callable) -> None:
        self.app = app
        self.metrics_app = metrics_app

    def __call__(self, environ: dict, start_response: Callable):
        if (environ.get("PATH_INFO") or "/").rstrip("/") == PATH:
            return self.metrics_app(environ, start_response)
        started = time.perf_counter()
        status: list[str] = []

        def record_status(code: str, headers: list, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, record_status)
        finally:
            method = environ.get("REQUEST_METHOD", "")
            REQUEST_SECONDS.labels(
                method if method in _METHODS else "other",
                environ.get(ROUTE_KEY, NO_ROUTE),
                status[-1].split(" ", 1)[0] if status else "500",
            ).observe(time.perf_counter() - started)


def warm_up() -> threading.Thread | None:
    """Read the fleet once in the background, so the first scrape finds every node's GPUs read already."""
    if not CONF.api.metrics_enabled:
        return None
    thread = threading.Thread(target=lambda: list(FLEET.collect()), name="kiln-metrics-warm-up", daemon=True)
    thread.start()
    return thread


def wrap(app: Callable, strategy: str, on_error: Callable) -> Callable:
    """``app`` timed, with /metrics beside it (per [api]metrics_enabled and metrics_auth)."""
    if not CONF.api.metrics_enabled:
        return app
    metrics_app: Callable = make_wsgi_app(REGISTRY)
    if CONF.api.metrics_auth:
        metrics_app = auth.wrap(AdminOnly(metrics_app, on_error), strategy, on_error)
    return MetricsMiddleware(app, metrics_app)
