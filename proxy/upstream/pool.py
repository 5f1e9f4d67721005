"""Keep-alive HTTP/1.1 connections to PostgREST, with httptools (llhttp) parsing the answers.

Every uncached request pays its trip to PostgREST twice on this machine: once in PostgREST and
once here, on the same cores. aiohttp's client spends ~80 µs of CPU a request on objects this
proxy does not use (cookie jar, redirects, URL building, a response object with its own
stream); this pool sends prepared bytes on a pooled connection and parses the answer with
llhttp, ~17 µs (docs/PERFORMANCE.md). It speaks only what PostgREST needs: one request at a
time per connection, Content-Length or chunked answers, keep-alive, TLS for a hosted
PostgREST.

Failures are typed for the caller: `Unavailable` (cannot connect, no connection free in time,
the connection dropped), `TimeoutError` (PostgREST took longer than the read timeout between
two pieces of its answer). A request on a reused connection that drops before a single byte
of the answer came back is sent again on a fresh connection when it is idempotent: that is
PostgREST having closed an idle keep-alive connection, not a failed request.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Iterable
from typing import cast
from urllib.parse import urlsplit

import httptools

from proxy.upstream.fairshare import TENANT, FairShare

# Answers larger than this are not buffered further until the reader has taken some.
HIGH_WATER = 1 << 20


class Unavailable(ConnectionError):
    """PostgREST could not be reached, or dropped the connection during an answer."""


class Response:
    """One answer: status and headers once `head()` returned, then the body in chunks."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_done",
        "_error",
        "_headed",
        "_size",
        "_waiter",
        "headers",
        "keep_alive",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.keep_alive = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._headed = False
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- what the caller uses
    def header(self, name: str) -> str | None:
        """The first value of a header (name in any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def content_length(self) -> int | None:
        value = self.header("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def head(self) -> None:
        """Wait for the status line and headers."""
        while not self._headed:
            await self._wait()

    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" once it is complete."""
        while not self._chunks:
            if self._done:
                return b""
            await self._wait()
        chunk = self._chunks.popleft()
        self._size -= len(chunk)
        if self._size < HIGH_WATER // 2:
            self._conn.resume()
        return chunk

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return b"".join(parts)

    # -- what the connection calls
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._wake()

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        self._wake()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        conn = self._conn
        loop = conn.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(conn.pool.read_timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self._error is not None:
            raise self._error


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("PostgREST did not answer in time"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries at most one request at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.expect_body = True
        self.received = False  # any byte of the current answer
        self.served = 0  # answers completed on this connection
        self.idle_since = 0.0
        self.paused = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP connection's

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._done:
            self.close()  # nothing was asked: an unsolicited byte means the stream is confused
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response._fail(Unavailable(f"unparseable answer from PostgREST: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        response = self.response
        if response is not None:
            response._fail(Unavailable("PostgREST closed the connection"))

    # -- httptools callbacks
    # The parser calls back only while an answer is expected (send() set self.response).
    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        response.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        response.status = self.parser.get_status_code()
        response.keep_alive = self.parser.should_keep_alive()
        response._headed = True
        if not self.expect_body:
            # An answer to HEAD has no body whatever its headers say; llhttp cannot be told
            # so, hence a fresh parser for the next answer.
            self.parser = httptools.HttpResponseParser(self)
            self._complete()
        else:
            response._wake()

    def on_body(self, body: bytes) -> None:
        response = self.response
        assert response is not None
        response._feed(body)

    def on_message_complete(self) -> None:
        if self.response is not None and not self.response._done:
            self._complete()

    # -- the pool's side
    def _complete(self) -> None:
        response = self.response
        assert response is not None
        self.served += 1
        response._finish()

    def send(self, data: bytes, *, expect_body: bool) -> Response:
        self.response = response = Response(self)
        self.expect_body = expect_body
        self.received = False
        assert self.transport is not None  # the pool hands out open connections only
        self.transport.write(data)
        return response

    def reusable(self) -> bool:
        response = self.response
        return (
            self.transport is not None
            and response is not None
            and response._done
            and response._error is None
            and response.keep_alive
        )

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class Exchange:
    """`async with pool.request(...) as response`: the connection goes back to the pool (or is
    closed, if the answer was not read to its end) when the block ends. With a fair share
    (proxy/upstream/fairshare.py), one of the tenant's slots is held for as long, taken before a
    connection so that a tenant waiting for its turn holds none."""

    __slots__ = ("args", "conn", "held", "pool", "tenant")

    def __init__(
        self, pool: UpstreamPool, args: tuple[bytes, bool, bool], tenant: str | None
    ) -> None:
        self.pool = pool
        self.args = args
        self.tenant = tenant
        self.held: str | None = None
        self.conn: _Connection | None = None

    async def __aenter__(self) -> Response:
        fair = self.pool.fair
        if fair is not None:
            tenant = self.tenant if self.tenant is not None else TENANT.get()
            if tenant is not None:
                await fair.acquire(tenant)
                self.held = tenant
        try:
            self.conn, response = await self.pool._exchange(*self.args)
        except BaseException:
            self._give_back()
            raise
        return response

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.conn is not None  # __aenter__ returned: it has its connection
        self.pool._release(self.conn)
        self._give_back()

    def _give_back(self) -> None:
        if self.held is not None:
            assert self.pool.fair is not None  # held only with a fair share
            self.pool.fair.release(self.held)
            self.held = None


class UpstreamPool:
    """Up to `limit` keep-alive connections to the PostgREST at `url` (http or https; a path
    in it prefixes every target). Timeouts: connect_timeout for TCP (and TLS), read_timeout
    between two pieces of an answer, acquire_timeout (default: read_timeout) for a connection
    to come free when all `limit` are busy. fair: the per-tenant share every request is
    counted against (proxy/upstream/fairshare.py), None for none."""

    def __init__(
        self,
        url: str,
        *,
        limit: int,
        connect_timeout: float,
        read_timeout: float,
        acquire_timeout: float | None = None,
        keepalive_s: float = 30.0,
        fair: FairShare | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.base_path = parts.path.rstrip("/")
        default = (parts.scheme, self.port) in (("http", 80), ("https", 443))
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_line = f"Host: {host if default else f'{host}:{self.port}'}\r\n"
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.acquire_timeout = read_timeout if acquire_timeout is None else acquire_timeout
        self.keepalive_s = keepalive_s
        self.fair = fair
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None = None,
        *,
        retry: bool = False,
        tenant: str | None = None,
    ) -> Exchange:
        """method on base path + target (path and query, already encoded). retry: may be sent
        a second time (idempotent) when a reused connection turns out to be closed. tenant:
        whose fair share it spends (default: the request's, proxy/fairshare.TENANT)."""
        lines = [f"{method} {self.base_path}{target} HTTP/1.1\r\n", self.host_line]
        for name, value in headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"line break in header {name!r}")
            lines.append(f"{name}: {value}\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        # Header values as the client sent their bytes: aiohttp decodes them as UTF-8 keeping
        # any other byte as a surrogate, which this encoding turns back into that byte.
        data = "".join(lines).encode("utf-8", "surrogateescape")
        if body:
            data += body
        return Exchange(self, (data, method != "HEAD", retry), tenant)

    async def _exchange(
        self, data: bytes, expect_body: bool, retry: bool
    ) -> tuple[_Connection, Response]:
        if self._slots.locked():  # all connections busy: wait, but not forever
            try:
                await asyncio.wait_for(self._slots.acquire(), self.acquire_timeout)
            except TimeoutError:
                raise Unavailable("no connection to PostgREST came free in time") from None
        else:
            await self._slots.acquire()
        try:
            for _attempt in range(2):
                conn = self._idle.pop() if self._idle else None
                while conn is not None and not self._fresh(conn):
                    conn.close()
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    conn = await self._connect()
                response = conn.send(data, expect_body=expect_body)
                try:
                    await response.head()
                    return conn, response
                except Unavailable:
                    conn.close()
                    if not (retry and conn.served and not conn.received):
                        raise
                except BaseException:
                    conn.close()
                    raise
            raise Unavailable("PostgREST closed the connection")
        except BaseException:
            self._slots.release()
            raise

    def _fresh(self, conn: _Connection) -> bool:
        return conn.transport is not None and time.monotonic() - conn.idle_since < self.keepalive_s

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"cannot connect to PostgREST: {type(exc).__name__}") from None
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable() and not self._closed:
            conn.response = None
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    async def close(self) -> None:
        """Close every idle connection; those in use close when released."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
