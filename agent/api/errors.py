"""HTTP errors of the API and their body in Ironic's shape: {"error_message": "<JSON string>"}."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An error answered to the client with ``code`` and ``faultstring`` as its message."""

    code = 500

    def __init__(self, faultstring: str, code: int | None = None, headers: dict | None = None) -> None:
        super().__init__(faultstring)
        self.faultstring = faultstring
        if code is not None:
            self.code = code
        self.headers = headers or {}


class HTTPBadRequest(ApiError):
    code = 400


class HTTPUnauthorized(ApiError):
    code = 401


class HTTPForbidden(ApiError):
    code = 403


class HTTPNotFound(ApiError):
    code = 404


class HTTPMethodNotAllowed(ApiError):
    code = 405


class HTTPNotAcceptable(ApiError):
    code = 406


class HTTPConflict(ApiError):
    code = 409


class HTTPRequestEntityTooLarge(ApiError):
    code = 413


class HTTPUnsupportedMediaType(ApiError):
    code = 415


class HTTPServiceUnavailable(ApiError):
    code = 503


def error_body(code: int, faultstring: str, debuginfo: str | None = None) -> bytes:
    """Return the JSON body of an error, the inner document serialized as a string like Ironic's."""
    inner = {
        "faultstring": faultstring,
        "faultcode": "Client" if 400 <= code < 500 else "Server",
        "debuginfo": debuginfo,
    }
    return json.dumps({"error_message": json.dumps(inner)}).encode()
