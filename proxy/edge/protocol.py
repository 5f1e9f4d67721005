"""The proxy's HTTP protocol handler: aiohttp's RequestHandler with two changes.

1. L1 hits are answered where requests are parsed (proxy/edge/hitpath.py): when the connection is
   idle, each parsed request the hit path can answer is written back at once, in order; the
   first one it cannot answer, and everything after it, goes to aiohttp's request loop as usual.
   That first one may instead be relayed to PostgREST from here (proxy/edge/relaypath.py: a GET,
   a cache miss, or a POST with a sized body, read as it arrives); until its answer is written,
   requests arriving behind it are held back from aiohttp's request loop, so answers keep the
   order of requests.
2. aiohttp's own answers (a request line or header it cannot parse, one too long) come in the
   proxy's JSON error shape and are logged in one line without the offending bytes (aiohttp's
   text quotes the first 100 bytes of the bad line — which may be a token — and logs them).

This leans on RequestHandler internals of the aiohttp release pinned in pyproject.toml; each one
is verified at start-up (proxy/edge/capability.py), and the proxy serves through stock aiohttp
when any differs.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, _MsgType

from proxy.edge.hitpath import HitPath
from proxy.edge.relaypath import Relay, RelayPath
from proxy.ops.errors import ProxyError, error_response
from proxy.ops.keys import ON_DISCONNECT
from proxy.ops.requestid import request_id_for

log = logging.getLogger("nimbus.protocol")
# Answer no more from the hit path while this much is still waiting to be sent to the client
# (a client that does not read gets the full path, which waits for the socket to drain).
MAX_PENDING_WRITE = 256 * 1024


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


class ProxyHandler(RequestHandler):
    """RequestHandler + the hit path + JSON protocol errors."""

    _peer: str | None = None
    # Requests the request loop has taken and finished: equal when no answer is being made, so
    # one written now cannot overtake another (the loop re-arms some time after each answer;
    # waiting for that would send most requests after a full-path one the full way too).
    _taken = 0
    _done = 0
    _closing = False
    # A relay in flight (proxy/edge/relaypath.py) and the requests parsed behind it meanwhile.
    _relay: asyncio.Task[None] | None = None
    _held: collections.deque[_MsgType] | None = None
    _relay_body: StreamReader | None = None  # a relayed POST's body, still arriving maybe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peername = transport.get_extra_info("peername")
        self._peer = peername[0] if isinstance(peername, tuple) else None
        make_request = self._request_factory
        if make_request is None:
            return  # aiohttp set none: the connection is already being closed

        def taken(*args: Any, **kwargs: Any) -> web.BaseRequest:
            request = make_request(*args, **kwargs)
            self._taken += 1
            return request

        self._request_factory = taken

    async def _handle_request(
        self,
        request: web.BaseRequest,
        start_time: float | None,
        request_handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
    ) -> tuple[web.StreamResponse, bool]:
        answer = None
        try:
            answer = await super()._handle_request(request, start_time, request_handler)
            return answer
        finally:
            # What the request loop is about to conclude from this answer, known here already:
            # nothing may follow an answer that ends the connection.
            response, reset = answer if answer is not None else (None, True)
            if reset or response is None or not response.keep_alive:
                self._closing = True
            self._done += 1

    def data_received(self, data: bytes) -> None:
        manager = self._manager
        if self._relay is not None:
            self._hold(data)
            return
        if (
            not isinstance(manager, ProxyServer)
            or (manager.hits is None and manager.relays is None)
            or self._closing
            or self._taken != self._done
            or self._messages
        ):
            # An answer is being made, or requests are queued: keep the order, full path.
            super().data_received(data)
            return
        waiter = self._waiter  # set while the request loop waits for a request
        self._waiter = None  # parse without waking the request loop: answers are made here
        try:
            super().data_received(data)
        finally:
            self._waiter = waiter
        if self._messages and not self._buffer_paused:
            self._answer_fast(manager.hits, manager.relays)
        if self._messages and self._relay is None and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _hold(self, data: bytes) -> None:
        """Parse behind a relay in flight, keeping what arrives from the request loop."""
        waiter = self._waiter
        self._waiter = None
        try:
            super().data_received(data)
        finally:
            self._waiter = waiter
        if self._messages and self._held is not None:
            self._held.extend(self._messages)
            self._messages.clear()
            if len(self._held) >= self._max_msg_queue_size and not self._buffer_paused:
                self._pause_reading_for_buffer()  # as aiohttp does for its own queue

    def _answer_fast(self, hits: HitPath | None, relays: RelayPath | None) -> None:
        messages = self._messages
        transport = self.transport
        answered = False
        while messages and transport is not None and not self._force_close:
            message, payload = messages[0]
            if not isinstance(message, RawRequestMessage):
                break  # a parse error: aiohttp answers it
            if transport.get_write_buffer_size() > MAX_PENDING_WRITE:
                break
            wire: bytes | None = None
            relay: Relay | None = None
            try:
                looked = None
                if hits is not None and payload is EMPTY_PAYLOAD:
                    answer = hits.answer(message, self._peer)
                    if isinstance(answer, bytes):
                        wire = answer
                    else:
                        looked = answer
                if wire is None and relays is not None:
                    relay = relays.accept(message, self._peer, payload, looked)
            except Exception:  # a bug here must cost speed, never an answer
                log.exception("fast path failed; the full path answers")
            if wire is None and relay is None:
                break
            messages.popleft()
            if self._parser is not None:
                self._parser.message_consumed()
            if relay is not None and relays is not None:
                self._start_relay(relays, relay)
                break
            if wire is not None:
                transport.write(wire)
            answered = True
        if answered:
            self._rearm_keepalive()

    def _rearm_keepalive(self) -> None:
        # As the request loop does after a keep-alive answer: the idle timer runs from now
        # (re-armed here if it fired while answers only came from here).
        close_time = self._loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = self._loop.call_at(close_time, self._process_keepalive)

    def _start_relay(self, relays: RelayPath, relay: Relay) -> None:
        self._taken += 1  # busy: data arriving meanwhile is held (data_received)
        self._held = collections.deque(self._messages)  # anything pipelined behind it
        self._messages.clear()
        self._rearm_keepalive()  # the idle timer must not end the connection meanwhile
        self._relay_body = relay.payload
        self._relay = self._loop.create_task(self._run_relay(relays, relay))

    async def _run_relay(self, relays: RelayPath, relay: Relay) -> None:
        try:
            await relays.run(relay, self)
        except Exception:
            log.exception("relay path failed")
            if self.transport is not None:
                self.transport.close()  # an answer may be half written: end the connection
        finally:
            self._done += 1
            self._relay = None
            self._relay_body = None
            held, self._held = self._held, None
            self._messages.extend(held or ())
        manager = self._manager
        if self.transport is None or self._force_close or not isinstance(manager, ProxyServer):
            return
        self._rearm_keepalive()
        if self._messages and not self._buffer_paused:
            self._answer_fast(manager.hits, manager.relays)
        waiter = self._waiter
        if self._messages and self._relay is None and waiter is not None and not waiter.done():
            waiter.set_result(None)
        if (
            self._buffer_paused
            and self._relay is None
            and len(self._messages) <= self._msg_queue_resume_size
        ):
            self._resume_reading_if_drained()  # reading stopped while requests were held

    def connection_lost(self, exc: BaseException | None) -> None:
        request = self._current_request
        body = self._relay_body
        super().connection_lost(exc)
        # aiohttp drops its parser here, and with it whatever would have ended a body being
        # read: a relayed POST waiting for the rest of its body learns the client has left.
        if body is not None and not body.is_eof():
            body.set_exception(ConnectionResetError("Connection lost"))
        # A request that waits on something else than the client (a live stream) learns at
        # once that its client is gone, rather than at its next write.
        if request is not None:
            for callback in request.get(ON_DISCONNECT, ()):
                callback()

    def _process_keepalive(self) -> None:
        if self._relay is not None:  # not idle: an answer is on its way (a long stream, maybe)
            self._keepalive_handle = None
            self._rearm_keepalive()
            return
        super()._process_keepalive()

    async def shutdown(self, timeout: float | None = 15.0) -> None:  # noqa: ASYNC109
        # A relayed request is answered before the connection closes, as a full-path one is.
        relay = self._relay
        if relay is not None:
            await asyncio.wait({relay}, timeout=timeout)
        await super().shutdown(timeout)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        error = describe(status, exc)
        if isinstance(exc, ConnectionError):
            # Logged once where it surfaced (proxy/edge/middlewares.py: a client gone is INFO, an
            # upstream cut a WARNING); there is nobody to answer.
            log.debug("connection ended during a request (%s)", type(exc).__name__)
        elif isinstance(exc, BadHttpMessage):
            # The client's fault: one line, never the offending bytes (they may hold a token);
            # garbage on a fresh connection (TLS, scanners) only at debug level, as aiohttp does.
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.INFO
            log.log(level, "protocol error %s (%s)", error.status, type(exc).__name__)
        else:
            log.error("unhandled error %s", error.status, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started, cannot send an error response")
        request_id = request_id_for(None, None, ())
        request["request_id"] = request_id
        response = error_response(request, error)
        response.headers["X-Request-Id"] = request_id
        response.force_close()
        return response


class ProxyServer(web.Server):
    """A web.Server building ProxyHandler protocols; `hits` and `relays` are set once the app
    has started."""

    hits: HitPath | None = None
    relays: RelayPath | None = None

    def __call__(self) -> RequestHandler:
        return ProxyHandler(self, loop=self._loop, **self._kwargs)


class ProxyRunner(web.AppRunner):
    """An AppRunner serving through ProxyServer."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # runs the app's start-up
        # Same object, same state; only the protocol factory differs.
        server.__class__ = ProxyServer
        assert isinstance(server, ProxyServer)  # for the type checker: it is one now
        server.hits = HitPath.for_app(self._app)
        server.relays = RelayPath.for_app(self._app)
        return server
