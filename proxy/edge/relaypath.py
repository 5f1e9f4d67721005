"""The relay path: on a proxy without a response cache, a GET on /rest/v1 from a caller whose
token the verifier already knows is relayed to PostgREST by the protocol handler
(proxy/edge/protocol.py) — the request's allow-listed headers out on a pooled connection,
PostgREST's answer back as one prepared write — without an aiohttp request, task hop, middleware
chain or response object. Those cost more CPU than the relay itself, and on a machine PostgREST
keeps busy every CPU second the proxy spends is one PostgREST does not get (docs/PERFORMANCE.md).

Like the hit path, it only says yes: `accept()` runs the full path's checks synchronously — token
from the verifier's memo, session not revoked, path without dot segments, one request from a
rate-limit lease — and returns None whenever one of them cannot be decided at once; that
request (and any other method, HEAD included) takes the full path. What it sends and answers is
what the full path sends and answers (tests/test_relaypath.py compares them header by header),
errors included: PostgREST down -> 503, too slow -> 504, a lost database connection -> 503.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage

from proxy.cache.keys import CACHE
from proxy.edge.hitpath import SERVER, Clock
from proxy.gate import embedlimit
from proxy.gate.gate import identity_now, limit_now, tenant_of
from proxy.gate.identity import Identity
from proxy.gate.keys import DENYLIST, LIMITER, VERIFIER
from proxy.ops.errors import (
    REST_PREFIX,
    ProxyError,
    UpstreamError,
    UpstreamTimeout,
    rest_error_body,
    target_fault,
    upstream_failure,
)
from proxy.ops.keys import SETTINGS, TRUSTED
from proxy.ops.metrics import IN_FLIGHT, RELAY_PATH, UPSTREAM_ERRORS, UPSTREAM_SECONDS, child
from proxy.ops.observe import record, rest_route
from proxy.ops.requestid import request_id_for
from proxy.rest import rootdoc
from proxy.rest.routes import has_dot_segments
from proxy.upstream.exchange import (
    STREAM_THRESHOLD,
    collect,
    request_headers,
    response_headers,
    unavailable,
)
from proxy.upstream.fairshare import TenantBusy
from proxy.upstream.keys import UPSTREAM
from proxy.upstream.pool import Unavailable

log = logging.getLogger(__name__)
REST = REST_PREFIX + "/"
CHUNK_END = b"0\r\n\r\n"


@dataclass(slots=True)
class Relay:
    """One accepted request: what to send, and what the answer needs."""

    target: str
    headers: list[tuple[str, str]]
    identity: Identity
    limits: bytes
    request_id: str
    route: str
    start: float
    tenant: str


class RelayPath:
    """accept(message, peer) -> Relay or None; then `await run(relay, protocol)`."""

    def __init__(self, app: web.Application) -> None:
        settings = app[SETTINGS]
        self.pool = app[UPSTREAM]
        self.verifier = app[VERIFIER]
        self.denylist = app[DENYLIST]
        self.limiter = app.get(LIMITER)
        self.policy = self.limiter.policies["read"] if self.limiter is not None else None
        self.trusted = app[TRUSTED]
        self.apikey = settings.upstream_apikey
        self.retry_after = settings.retry_after_s
        self.max_embed_depth = settings.max_embed_depth
        self.max_embeds = settings.max_embeds
        self.clock = Clock()

    @classmethod
    def for_app(cls, app: web.Application) -> RelayPath | None:
        """The app's relay path: only without a response cache (a cached proxy's misses go the
        full path, which coalesces and stores them), and only with the fast paths turned on."""
        if not app[SETTINGS].hit_path or app.get(CACHE) is not None:
            return None
        return cls(app)

    def accept(self, message: RawRequestMessage, peer: str | None) -> Relay | None:
        start = time.perf_counter()
        if (
            message.method != "GET"
            or message.version != HttpVersion11
            or message.should_close
            or message.upgrade
            or "Expect" in message.headers
            or not message.path.startswith(REST)
        ):
            return None
        target = message.path[len(REST_PREFIX) :]
        if has_dot_segments(target) or target_fault(target) is not None:
            return None  # the full path refuses it
        if rootdoc.is_root(target.partition("?")[0].strip("/")):
            return None  # the full path takes PostgREST's address out of it
        try:
            embedlimit.check(
                message.url.raw_query_string,
                max_depth=self.max_embed_depth,
                max_embeds=self.max_embeds,
            )
        except embedlimit.EmbedLimit:
            return None  # the full path refuses it
        headers = message.headers
        identity = identity_now(headers, self.verifier, self.denylist)
        if identity is None:
            return None
        limits = limit_now(self.limiter, self.policy, identity, peer, headers, self.trusted)
        if limits is None:
            return None
        request_id = request_id_for(headers.get("X-Request-Id"), peer, self.trusted)
        upstream_headers = request_headers(headers, identity.token, self.apikey, request_id)
        route = rest_route(target.partition("?")[0].strip("/"))
        tenant = tenant_of(identity, peer, headers.getall("X-Forwarded-For", ()), self.trusted)
        RELAY_PATH.inc()
        return Relay(target, upstream_headers, identity, limits, request_id, route, start, tenant)

    async def run(self, relay: Relay, protocol) -> None:
        """Relay to PostgREST and write the answer to protocol's transport."""
        IN_FLIGHT.inc()
        status = 499  # the client went away before an answer
        try:
            status = await self._exchange(relay, protocol)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - relay.start
            record(relay.request_id, "GET", relay.route, status, elapsed, relay.identity, None)

    async def _exchange(self, relay: Relay, protocol) -> int:
        started = False
        sent = time.perf_counter()
        try:
            async with self.pool.request(
                "GET", relay.target, relay.headers, retry=True, tenant=relay.tenant
            ) as up:
                child(UPSTREAM_SECONDS, f"{up.status // 100}xx").observe(time.perf_counter() - sent)
                headers = response_headers(up)
                if up.status in (204, 304):
                    self._write(protocol, self._head(relay, up.status, headers, None))
                    return up.status
                parts, complete = await collect(up, STREAM_THRESHOLD)
                if complete:
                    body = b"".join(parts)
                    failure = upstream_failure(up.status, body)
                    if failure is not None:
                        return self._error(relay, protocol, failure)
                    self._write(protocol, self._head(relay, up.status, headers, len(body)) + body)
                    return up.status
                # Too large to hold: stream it, sized as PostgREST sized it, else chunked.
                length = up.content_length
                started = True
                self._write(protocol, self._head(relay, up.status, headers, length))
                pending = b"".join(parts)
                while pending:
                    self._write(protocol, pending if length is not None else _chunk(pending))
                    await protocol._drain_helper()
                    pending = await up.read_chunk()
                if length is None:
                    self._write(protocol, CHUNK_END)
                return up.status
        except Unavailable as exc:
            if started:
                return self._cut(protocol, exc)
            return self._error(relay, protocol, unavailable(exc, self.retry_after))
        except TimeoutError as exc:
            if started:
                return self._cut(protocol, exc)
            UPSTREAM_ERRORS.labels("timeout").inc()
            return self._error(relay, protocol, UpstreamTimeout("PostgREST did not answer in time"))
        except TenantBusy as exc:
            return self._error(relay, protocol, exc)  # the tenant's share stayed busy: 429
        except ConnectionError:
            return 499  # the client left while its answer was streamed

    def _head(
        self, relay: Relay, status: int, headers: list[tuple[str, str]], length: int | None
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {_reason(status)}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        lines.append(f"X-Request-Id: {relay.request_id}\r\n")
        if status not in (204, 304):
            if not any(name == "Content-Type" for name, _ in headers):
                lines.append("Content-Type: application/octet-stream\r\n")  # as aiohttp adds
            if length is None:
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                lines.append(f"Content-Length: {length}\r\n")
        return b"".join(
            (
                "".join(lines).encode("latin-1"),
                relay.limits,
                self.clock.date(),
                SERVER,
                b"\r\n",
            )
        )

    def _error(self, relay: Relay, protocol, error: ProxyError) -> int:
        """The full path's JSON error (which carries no RateLimit headers either)."""
        if isinstance(error, UpstreamError):
            error.log(relay.request_id)
        body = rest_error_body(error)
        lines = [f"HTTP/1.1 {error.status} {_reason(error.status)}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in error.headers.items()]
        lines.append("Content-Type: application/json\r\n")
        lines.append(f"X-Request-Id: {relay.request_id}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n")
        head = "".join(lines).encode("latin-1") + self.clock.date() + SERVER + b"\r\n"
        self._write(protocol, head + body)
        return error.status

    @staticmethod
    def _cut(protocol, exc: BaseException) -> int:
        # The status line is gone: end the connection so the client sees the answer is short.
        log.warning("upstream failed mid-stream: %s", type(exc).__name__)
        UPSTREAM_ERRORS.labels("mid_stream").inc()
        if protocol.transport is not None:
            protocol.transport.close()
        return 502

    @staticmethod
    def _write(protocol, data: bytes) -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"  # as aiohttp says for a status it has no phrase for


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
