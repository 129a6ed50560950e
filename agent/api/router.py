"""A small path router: templates such as /v1/nodes/{node_ident}/traits/{trait} to handlers."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from agent.api import errors

_PARAM = re.compile(r"\{(\w+)\}")


class Router:
    """Maps (method, path) to a handler and the path's parameters."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, str, dict[str, Callable]]] = []
        self._index: dict[str, dict[str, Callable]] = {}

    def add(self, method: str, template: str, handler: Callable) -> None:
        """Serve ``method`` on paths matching ``template`` with ``handler(req, **params)``."""
        if template not in self._index:
            pattern = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", template) + "$")
            self._index[template] = {}
            self._routes.append((pattern, template, self._index[template]))
        self._index[template][method.upper()] = handler

    def match(self, method: str, path: str) -> tuple[Callable, dict[str, str]]:
        """Return (handler, params) for a request; NotFound or MethodNotAllowed otherwise."""
        handler, params, _template = self.match_route(method, path)
        return handler, params

    def match_route(self, method: str, path: str) -> tuple[Callable, dict[str, str], str]:
        """Return (handler, params, the route's template) for a request; as ``match`` otherwise."""
        if len(path) > 1:
            path = path.rstrip("/")
        for pattern, template, methods in self._routes:
            found = pattern.match(path)
            if not found:
                continue
            handler = methods.get(method.upper())
            if handler is None and method.upper() == "HEAD":
                handler = methods.get("GET")
            if handler is None:
                allowed = ", ".join(sorted(methods))
                raise errors.HTTPMethodNotAllowed(
                    f"Method {method} is not allowed on {path}; allowed: {allowed}.",
                    headers={"Allow": allowed},
                )
            return handler, {k: unquote(v) for k, v in found.groupdict().items()}, template
        raise errors.HTTPNotFound(f"The resource could not be found: no such path {path}.")
