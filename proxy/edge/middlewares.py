"""Error rendering. The chain is observe (request id, timing, log, metrics: proxy/ops/observe.py,
ids: proxy/ops/requestid.py) then error rendering, so every failure becomes one JSON shape that
names its request."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy.gate.gate import forget_decision
from proxy.ops.errors import (
    REST_PREFIX,
    ProxyError,
    StreamCut,
    UpstreamError,
    bad_header,
    bad_target,
    error_response,
)
from proxy.upstream.exchange import unreadable_header

log = logging.getLogger(__name__)
# Where the client's own headers are forwarded (proxy/upstream/exchange.py request_headers).
FORWARDING = (REST_PREFIX, "/auth/v1")
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    431: "headers_too_large",
}


def error_middleware() -> Middleware:
    """Second: ProxyError and aiohttp's HTTP errors become JSON; anything else a logged 500.
    A request target with a NUL, invalid UTF-8 or a `#`, and a header that would be forwarded
    with a value that is not UTF-8, are refused here, before any handler (so before anything
    goes upstream, or a write's bookkeeping begins); a client that leaves mid-request is one
    INFO line."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = bad_target(request.raw_path, request.path)
        if refused is None and request.path.startswith(FORWARDING):
            unreadable = unreadable_header(request.headers)
            if unreadable is not None:
                refused = bad_header(unreadable, request.path)
        if refused is not None:
            return error_response(request, refused)
        try:
            return await handler(request)
        except StreamCut:
            raise  # upstream failed while the answer was under way (logged where it happened)
        except ConnectionResetError as exc:
            # The client left (mid-body, or before its answer): nothing to send, nobody to blame.
            log.info("client went away during request %s (%s)", request.get("request_id"), exc)
            raise
        except ProxyError as exc:
            if isinstance(exc, UpstreamError):
                exc.log(request.get("request_id"))
            forget_decision(request)
            return error_response(request, exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            forget_decision(request)
            code = HTTP_CODES.get(exc.status, "http_error")
            error = ProxyError(exc.reason, status=exc.status, code=code)
            if exc.status == 405:
                error.headers["Allow"] = exc.headers.get("Allow", "")
            return error_response(request, error)
        except Exception:
            log.exception("unhandled error in request %s", request.get("request_id"))
            forget_decision(request)
            return error_response(request, ProxyError("Internal error"))

    return middleware
