"""Forwarding to PostgREST (and Supabase Auth): pooled keep-alive connections
(proxy/upstream/pool.py), header hygiene, bounded timeouts, errors in the JSON shape."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.ops.errors import StreamCut, UpstreamTimeout, UpstreamUnavailable
from proxy.ops.metrics import UPSTREAM_ERRORS, UPSTREAM_SECONDS, child
from proxy.upstream.pool import Response, Unavailable, UpstreamPool

log = logging.getLogger(__name__)

# Request headers PostgREST understands; everything else (cookies, hop-by-hop, apikey) stays here.
FORWARD_REQUEST = (
    "Accept",
    "Prefer",
    "Range",
    "Range-Unit",
    "Accept-Profile",
    "Content-Profile",
    "Content-Type",
    "X-Client-Info",
    "apikey",
    "Origin",
    "Access-Control-Request-Method",
    "Access-Control-Request-Headers",
)
# Response headers passed back to the client; hop-by-hop and server internals are dropped.
FORWARD_RESPONSE = (
    "Content-Type",
    "Content-Range",
    "Content-Location",
    "Location",
    "Preference-Applied",
    "WWW-Authenticate",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Vary",
)
FORWARD_RESPONSE_LOWER = {name.lower(): name for name in FORWARD_RESPONSE}
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
STREAM_THRESHOLD = 256 * 1024


def open_session(
    *, connect_timeout: float, read_timeout: float, limit: int
) -> aiohttp.ClientSession:
    """The aiohttp session for the proxy's own upstream calls — Auth sign-in, JWKS, health
    probes, CSV streams — (created at start-up, closed at shutdown); requests relayed on a
    caller's behalf go through proxy/upstream/pool.py."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300, keepalive_timeout=30),
        # connect = waiting for a pooled connection plus connecting; sock_connect = the TCP part.
        timeout=aiohttp.ClientTimeout(
            total=None, connect=read_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        ),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


def unreadable_header(incoming: CIMultiDictProxy[str]) -> str | None:
    """The name of a header that would be forwarded whose value is not UTF-8 (aiohttp keeps such
    bytes as surrogates; PostgREST answers them with a dropped connection or a 500), else None."""
    if "".join(incoming.values()).isascii():
        return None
    for name in FORWARD_REQUEST:
        for value in incoming.getall(name, ()):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def origin_target(request: web.Request) -> str:
    """The request's path and query as sent (percent-encoding kept), in origin form also when
    the client sent the absolute form (`GET http://host/path HTTP/1.1`, which HTTP/1.1 servers
    must accept; raw_path is then the whole URI)."""
    url = request.rel_url
    query = url.raw_query_string
    return url.raw_path + ("?" + query if query else "")


def request_headers(
    incoming: CIMultiDictProxy[str], token: str | None, apikey: str, request_id: str | None
) -> list[tuple[str, str]]:
    """The headers sent upstream: the allow-listed ones, the verified token, the request id."""
    headers: list[tuple[str, str]] = []
    for name in FORWARD_REQUEST:
        for value in incoming.getall(name, ()):
            headers.append((name, value))
    if apikey and "apikey" not in incoming:
        headers.append(("apikey", apikey))
    if token is not None:
        headers.append(("Authorization", "Bearer " + token))
    if request_id:
        headers.append(("X-Request-Id", request_id))
    return headers


async def forward(
    request: web.Request,
    pool: UpstreamPool,
    target: str,
    *,
    token: str | None,
    body: bytes | None,
    retry_after: int,
    apikey: str = "",
    before_relay: Callable[[Response], Awaitable[None]] | None = None,
    hold_up_to: int = STREAM_THRESHOLD,
    prefer: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Send the request to target (path and query, already encoded) and relay the answer;
    before_relay(answer) runs once PostgREST has answered (status and headers, body unread)
    and before the client sees anything. Bodies up to hold_up_to bytes come back whole (a
    web.Response the caller may still change); a streamed answer's head is sent here (the
    gate's RateLimit headers are added as it is prepared, proxy/gate/gate.py). prefer: one more
    Prefer header, the proxy's own (PostgREST reads them all); extra: headers of the proxy's
    own to send too (a write's token, proxy/cache/ownwrites.py)."""
    method = request.method
    headers = request_headers(request.headers, token, apikey, request.get("request_id"))
    if prefer is not None:
        headers.append(("Prefer", prefer))
    if extra:
        headers.extend(extra.items())
    async with exchange(
        pool, method, target, headers, body, retry=method in IDEMPOTENT, retry_after=retry_after
    ) as upstream:
        if before_relay is not None:
            await before_relay(upstream)
        return await _relay(request, upstream, hold_up_to)


@asynccontextmanager
async def exchange(
    pool: UpstreamPool,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None = None,
    *,
    retry: bool,
    retry_after: int,
    tenant: str | None = None,
) -> AsyncIterator[Response]:
    """The one way every path calls PostgREST (the full /rest/v1 path, the relay path, /api/v1):
    one request on a pooled connection, its time to an answer observed by status class, and an
    unreachable or silent PostgREST raised as the proxy's 503 or 504 (counted), whether it
    happens before the answer or while the caller reads its body. What the caller does with
    a failure after it has started answering its client is its own affair (it must end that
    connection), so such failures are caught by the caller before they reach here."""
    start = time.perf_counter()
    try:
        async with pool.request(method, target, headers, body, retry=retry, tenant=tenant) as up:
            child(UPSTREAM_SECONDS, f"{up.status // 100}xx").observe(time.perf_counter() - start)
            yield up
    except Unavailable as exc:
        raise unavailable(exc, retry_after) from None
    except TimeoutError:
        UPSTREAM_ERRORS.labels("timeout").inc()
        raise UpstreamTimeout("PostgREST did not answer in time") from None


def unavailable(exc: Exception, retry_after: int) -> UpstreamUnavailable:
    """The 503 for an unreachable upstream (logged and counted)."""
    log.warning("upstream unavailable: %s", exc)
    UPSTREAM_ERRORS.labels(type(exc).__name__).inc()
    return UpstreamUnavailable(
        "PostgREST is unavailable",
        details=type(exc).__name__,
        headers={"Retry-After": str(retry_after)},
    )


def response_headers(upstream: Response) -> list[tuple[str, str]]:
    """The allow-listed headers of an upstream answer, named as this proxy spells them."""
    allowed = FORWARD_RESPONSE_LOWER
    pairs = ((name.lower(), value) for name, value in upstream.headers)
    return [(allowed[name], value) for name, value in pairs if name in allowed]


async def collect(upstream: Response, limit: int) -> tuple[list[bytes], bool]:
    """The answer's body as it arrives, until it is complete or has passed limit bytes:
    (the parts read, whether that is all of it)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upstream.read_chunk():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return parts, False
    return parts, True


async def _relay(
    request: web.Request,
    upstream: Response,
    hold_up_to: int,
) -> web.StreamResponse:
    headers = CIMultiDict(response_headers(upstream))
    headers["X-Request-Id"] = request["request_id"]
    if request.method == "HEAD" or upstream.status in (204, 304):
        return web.Response(status=upstream.status, headers=headers)
    # PostgREST answers chunked; most bodies are small, so collect up to a threshold and send
    # them with a Content-Length in one write, and stream only what outgrows it.
    parts, complete = await collect(upstream, hold_up_to)
    if complete:
        return web.Response(status=upstream.status, headers=headers, body=b"".join(parts))
    response = web.StreamResponse(status=upstream.status, headers=headers)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    try:
        await response.write(b"".join(parts))
        while chunk := await upstream.read_chunk():
            await response.write(chunk)
    except (Unavailable, TimeoutError) as exc:
        # The status line is gone: no error can be sent any more, and a retry would write a
        # second response into this one. End the connection so the client sees the failure.
        log.warning("upstream failed mid-stream: %s", type(exc).__name__)
        UPSTREAM_ERRORS.labels("mid_stream").inc()
        if request.transport is not None:
            request.transport.close()
        raise StreamCut("upstream failed while streaming") from None
    await response.write_eof()
    return response
