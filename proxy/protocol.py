"""aiohttp's own answers (a request line or header it cannot parse, one too long) in the proxy's
JSON error shape, logged without the offending bytes.

aiohttp answers these from its protocol handler, before any middleware runs, with a plain-text
body that quotes the first 100 bytes of the bad line — which may be a token — and logs that text
with a traceback. `ProxyRunner` is an `AppRunner` whose server builds `JsonErrorsHandler`s instead.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from proxy.errors import ProxyError, error_response

log = logging.getLogger("nimbus.protocol")


def describe(status: int, exc: BaseException | None) -> ProxyError:
    """The error a client is told about, naming the fault but never echoing its bytes."""
    if isinstance(exc, LineTooLong):
        return ProxyError(
            "a request line or header is longer than NIMBUS_MAX_HEADER_BYTES",
            status=431,
            code="headers_too_large",
        )
    if isinstance(exc, BadHttpMessage):
        return ProxyError(
            f"malformed HTTP request: {type(exc).__name__}", status=400, code="bad_request"
        )
    if status == 504:
        return ProxyError("the request took too long", status=504, code="timeout")
    return ProxyError("internal error", status=status, code="internal_error")


class JsonErrorsHandler(RequestHandler):
    """A RequestHandler whose protocol-level errors are JSON and are logged in one safe line."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started, cannot send an error response")
        error = describe(status, exc)
        level = logging.INFO if error.status < 500 else logging.ERROR
        log.log(level, "protocol error %s (%s)", error.status, type(exc).__name__)
        response = error_response(request, error)
        response.force_close()
        return response


class JsonErrorsServer(web.Server):
    """A web.Server building JsonErrorsHandler protocols (same arguments, same state)."""

    def __call__(self) -> RequestHandler:
        return JsonErrorsHandler(self, loop=self._loop, **self._kwargs)


class ProxyRunner(web.AppRunner):
    """An AppRunner whose server answers protocol errors in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same object, same state; only the protocol factory differs.
        server.__class__ = JsonErrorsServer
        return server
