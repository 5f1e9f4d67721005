"""Typed errors and the two JSON shapes they are rendered in.

`/rest/v1` speaks PostgREST's shape (`code`, `message`, `details`, `hint`) so Supabase clients parse
the proxy's own errors like PostgREST's; every other path uses the product's
`{"error": {"code", "message", "details", "request_id"}}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

import orjson
from aiohttp import web

REST_PREFIX = "/rest/v1"
log = logging.getLogger(__name__)


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
        # A string on /rest/v1 (PostgREST's shape); any JSON value on /api/v1 (ApiError).
        self.details: object = details
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


class StreamCut(ConnectionResetError):
    """The answer was under way when upstream failed: the connection is ended (already logged),
    which is not the client going away."""


def target_fault(raw_target: str) -> str | None:
    """What makes a raw request target (path and query, percent-encoded) unfit to pass on: a NUL
    or bytes that are not UTF-8 once decoded — PostgREST (and PostgreSQL text) cannot take them,
    and a connection it drops over them must not count as an upstream failure — or a `#`: a
    fragment is no part of a request, this proxy's parser ends the query there and PostgREST
    does not, so the two would read different requests. None when fine."""
    if "#" in raw_target:
        return "contains a '#' (a fragment is not sent to a server)"
    if "%" not in raw_target and raw_target.isascii():
        return None  # nothing encoded (a raw NUL never gets past the HTTP parser)
    try:
        # A str is encoded as UTF-8 first: raw bytes that were not UTF-8 (kept as surrogates)
        # fail there, percent-encoded ones at decode.
        text = unquote_to_bytes(raw_target).decode("utf-8")
    except UnicodeError:
        return "is not valid UTF-8"
    return "contains a NUL character" if "\x00" in text else None


def bad_target(raw_target: str, path: str) -> ProxyError | None:
    """The 400 for a request target with a NUL or invalid UTF-8, in its surface's code."""
    fault = target_fault(raw_target)
    if fault is None:
        return None
    code = "PGRST100" if path.startswith(REST_PREFIX) else "bad_request"
    return ProxyError(f"The request path or query {fault}", status=400, code=code)


def bad_header(name: str, path: str) -> ProxyError:
    """The 400 for a header that would be forwarded with a value that is not UTF-8 (PostgREST
    cannot read it; HTTP allows such bytes, so only what goes upstream is refused)."""
    code = "PGRST100" if path.startswith(REST_PREFIX) else "bad_request"
    return ProxyError(f"The request header {name} is not valid UTF-8", status=400, code=code)


def database_connection_lost(
    status: int, body: bytes | dict[str, object]
) -> UpstreamUnavailable | None:
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


def statement_timed_out(status: int, body: bytes) -> ProxyError | None:
    """The answer to a query PostgreSQL cancelled at the role's statement_timeout (PostgREST: 500,
    SQLSTATE 57014), else None: a 504 that says so (the code stays 57014, which clients know),
    never PostgREST's 500 as if the server had failed."""
    if status != 500 or len(body) > 1024 or b'"57014"' not in body:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or parsed.get("code") != "57014":
        return None
    return ProxyError(
        "The query ran longer than the statement timeout and was cancelled",
        status=504,
        code="57014",
        details=parsed.get("message"),
        hint="Narrow the request (filters, a smaller limit, fewer embedded resources).",
    )


def upstream_failure(status: int, body: bytes) -> ProxyError | None:
    """The proxy's own error for a PostgREST answer that is not the request's to carry (a lost
    database connection, a cancelled statement), else None: pass the answer through."""
    if status == 400:
        return database_connection_lost(status, body)
    if status == 500:
        return statement_timed_out(status, body) or UpstreamError.of(body)
    return None


class UpstreamError(ProxyError):
    """PostgREST failed on its side (500, e.g. an internal error in SQL): answered in the proxy's
    shape, PostgreSQL's own words kept for the log (they may name internals), never the client."""

    status = 500
    code = "upstream_error"

    def __init__(self, pg_code: str, pg_message: str) -> None:
        super().__init__(
            "PostgREST could not answer this request",
            hint="The proxy's log has the details under this request's X-Request-Id.",
        )
        self.pg_code = pg_code
        self.pg_message = pg_message

    @classmethod
    def of(cls, body: bytes) -> UpstreamError:
        """The error for PostgREST's 500 answer body (JSON or not)."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return cls("", body[:200].decode("utf-8", "replace"))
        return cls(str(parsed.get("code") or ""), str(parsed.get("message") or "")[:500])

    def log(self, request_id: str | None) -> None:
        """One ERROR line naming the request (no traceback: the fault is PostgREST's)."""
        log.error(
            "postgrest answered 500 on request %s: %s %s", request_id, self.pg_code, self.pg_message
        )


def rest_error_body(error: ProxyError) -> bytes:
    """An error on /rest/v1, shaped as PostgREST shapes its own."""
    return orjson.dumps(
        {"code": error.code, "message": error.message, "details": error.details, "hint": error.hint}
    )


def error_response(request: web.BaseRequest, error: ProxyError) -> web.Response:
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
