"""Typed errors and the two JSON shapes they are rendered in.

`/rest/v1` speaks PostgREST's shape (`code`, `message`, `details`, `hint`) so Supabase clients parse
the proxy's own errors like PostgREST's; every other path uses the product's
`{"error": {"code", "message", "details", "request_id"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

REST_PREFIX = "/rest/v1"


class ProxyError(Exception):
    """An error the proxy answers itself, with an HTTP status and a stable code."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class Unauthorized(ProxyError):
    """The request carries no valid token (401, nothing sent upstream)."""

    status = 401
    code = "invalid_token"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(
            message,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'
            },
        )
        self.reason = reason


class UpstreamUnavailable(ProxyError):
    """PostgREST could not be reached (503 with Retry-After)."""

    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(ProxyError):
    """PostgREST did not answer within the configured timeout (504)."""

    status = 504
    code = "upstream_timeout"


def database_connection_lost(status: int, body: bytes | dict) -> UpstreamUnavailable | None:
    """The answer to a PostgREST error meaning its database connection broke mid-statement, else
    None. PostgREST 12 answers that 400 with an empty code and message: not the request's fault,
    and a write may have committed, so 503 — the client retries (with its idempotency key)."""
    if status != 400:
        return None
    if isinstance(body, bytes):
        if len(body) > 512:
            return None
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(body, dict) or body.get("code") or body.get("message"):
        return None
    return UpstreamUnavailable("The database connection was lost", headers={"Retry-After": "1"})


def rest_error_body(error: ProxyError) -> bytes:
    """An error on /rest/v1, shaped as PostgREST shapes its own."""
    return orjson.dumps(
        {"code": error.code, "message": error.message, "details": error.details, "hint": error.hint}
    )


def error_response(request: web.Request, error: ProxyError) -> web.Response:
    """Render an error in the shape of the surface the request was made to."""
    request_id = request.get("request_id")
    if request.path.startswith(REST_PREFIX):
        body = rest_error_body(error)
    else:
        body = orjson.dumps(
            {
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "details": error.details,
                    "request_id": request_id,
                }
            }
        )
    return web.Response(
        status=error.status,
        body=body,
        content_type="application/json",
        headers=error.headers,
    )
