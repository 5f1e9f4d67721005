"""proxy/upstream/pool.py at the edges of HTTP/1.1 that a healthy PostgREST rarely shows: answers
cut into single bytes, keep-alive connections closed while idle, a stalled or dropped answer,
HEAD with chunked headers, a full pool. The far end is a scripted asyncio server on 127.0.0.1
(each test says what it answers) — PostgREST cannot be made to misbehave on cue; the pool's
ordinary traffic against the real PostgREST is covered by every pass-through test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from proxy.upstream.pool import HIGH_WATER, Unavailable, UpstreamPool

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Upstream"], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Upstream:
    """A scripted server: counts connections and the requests it read."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.open: dict[asyncio.Task, asyncio.StreamWriter] = {}

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for writer in self.open.values():
            writer.close()  # the scripts see EOF and end
        await asyncio.gather(*self.open, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self.open[task] = writer
        try:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                await self.script(reader, writer, self)
        finally:
            writer.close()
            del self.open[task]


def pool_for(upstream: Upstream, **kw) -> UpstreamPool:
    options = {"limit": 4, "connect_timeout": 1.0, "read_timeout": 1.0} | kw
    return UpstreamPool(upstream.url, **options)


async def get(pool: UpstreamPool, method: str = "GET", body: bytes | None = None):
    retry = method in ("GET", "HEAD")  # as the proxy asks: idempotent requests only
    async with pool.request(method, "/things?id=eq.1", [("Accept", "*/*")], body, retry=retry) as r:
        return r.status, r.headers, await r.read()


async def serve_forever(reader, writer, up: Upstream, answer: bytes = OK) -> None:
    while True:
        await up.read_request(reader)
        writer.write(answer)
        await writer.drain()


async def test_keep_alive_reuses_one_connection() -> None:
    async with Upstream(serve_forever) as up:
        pool = pool_for(up)
        for _ in range(5):
            assert (await get(pool))[0::2] == (200, b"ok")
        assert up.connections == 1
        assert up.requests[0].startswith(b"GET /things?id=eq.1 HTTP/1.1\r\nHost: 127.0.0.1:")
        await pool.close()


async def test_chunked_answer_arriving_byte_by_byte() -> None:
    body = b'[{"id":1},{"id":2}]'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (7, body[:7])
        + b"%x\r\n%s\r\n" % (len(body) - 7, body[7:])
        + b"0\r\n\r\n"
    )

    async def dribble(reader, writer, up):
        while True:
            await up.read_request(reader)
            for i in range(len(answer)):
                writer.write(answer[i : i + 1])
                await writer.drain()

    async with Upstream(dribble) as up:
        pool = pool_for(up)
        for _ in range(2):
            status, headers, got = await get(pool)
            assert (status, got) == (200, body)
            assert ("Content-Type", "application/json") in headers
        assert up.connections == 1
        await pool.close()


async def test_idle_connection_closed_by_upstream_is_retried_for_get_not_post() -> None:
    async def one_then_close(reader, writer, up):
        await up.read_request(reader)
        writer.write(OK)  # keep-alive by default in HTTP/1.1, then closed anyway
        await writer.drain()

    async with Upstream(one_then_close) as up:
        pool = pool_for(up)
        assert (await get(pool))[0] == 200
        # At once: the pool has not yet seen the close, sends on the dead connection, and
        # resends on a fresh one.
        assert (await get(pool))[0] == 200
        assert up.connections == 2
        sent = len(up.requests)
        assert (await get(pool))[0] == 200
        # A POST is never sent twice: on a connection found closed it fails instead.
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append((await get(pool, "POST", b"{}"))[0])
            except Unavailable:
                outcomes.append("unavailable")
        posts = [r for r in up.requests[sent + 1 :] if r.startswith(b"POST")]
        assert len(posts) == outcomes.count(200)
        assert all(r.endswith(b"Content-Length: 2\r\n\r\n{}") for r in posts)
        await pool.close()


async def test_stalled_answer_times_out_and_connection_is_not_reused() -> None:
    async def stall_first(reader, writer, up):
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # silent until the client gives up and closes

    async with Upstream(stall_first) as up:
        pool = pool_for(up, read_timeout=0.2)
        with pytest.raises(TimeoutError):
            await get(pool)
        with pytest.raises(TimeoutError):
            await get(pool)
        assert up.connections == 2  # the half-read connection was closed, not pooled
        await pool.close()


async def test_answer_cut_short_is_unavailable() -> None:
    async def cut(reader, writer, up):
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    async with Upstream(cut) as up:
        pool = pool_for(up)
        with pytest.raises(Unavailable):
            await get(pool)
        await pool.close()


async def test_head_answer_with_chunked_header_has_no_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Range: 0-9/*\r\n\r\n"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"

    async def answer(reader, writer, up):
        while True:
            request = await up.read_request(reader)
            writer.write(head if request.startswith(b"HEAD") else chunked)
            await writer.drain()

    async with Upstream(answer) as up:
        pool = pool_for(up)
        status, headers, body = await get(pool, "HEAD")
        assert (status, body) == (200, b"")
        assert ("Content-Range", "0-9/*") in headers
        assert (await get(pool))[0::2] == (200, b"ok")  # same connection, next answer intact
        assert up.connections == 1
        await pool.close()


async def test_connection_close_answer_is_not_pooled() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"

    async with Upstream(lambda r, w, up: serve_forever(r, w, up, answer)) as up:
        pool = pool_for(up)
        for _ in range(3):
            assert (await get(pool))[0::2] == (200, b"ok")
        assert up.connections == 3
        await pool.close()


async def test_full_pool_waits_then_gives_up() -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(reader, writer, up):
        while True:
            await up.read_request(reader)
            arrived.set()
            await release.wait()
            writer.write(OK)
            await writer.drain()

    async with Upstream(slow) as up:
        pool = pool_for(up, limit=1, read_timeout=5, acquire_timeout=0.2)
        first = asyncio.create_task(get(pool))
        await arrived.wait()
        with pytest.raises(Unavailable, match="came free"):
            await get(pool)  # the only connection is busy for longer than the timeout
        release.set()
        assert (await first)[0] == 200
        assert (await get(pool))[0] == 200
        assert up.connections == 1
        await pool.close()


async def test_large_answer_read_slowly_arrives_whole() -> None:
    body = bytes(range(256)) * (6 * 4096)  # 6 MiB, more than the pool buffers unread
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async with Upstream(lambda r, w, up: serve_forever(r, w, up, answer)) as up:
        pool = pool_for(up)
        async with pool.request("GET", "/big", []) as response:
            assert response.content_length == len(body)
            parts, buffered = [], 0
            while chunk := await response.read_chunk():
                parts.append(chunk)
                buffered = max(buffered, response._size)
                if len(parts) % 16 == 0:
                    await asyncio.sleep(0.001)  # a slow reader: the pool must pause, not grow
        assert b"".join(parts) == body
        assert buffered < HIGH_WATER + 512 * 1024
        assert (await get(pool))[0] == 200
        assert up.connections == 1
        await pool.close()


async def test_line_breaks_in_header_values_are_refused() -> None:
    pool = UpstreamPool("http://127.0.0.1:9", limit=1, connect_timeout=1, read_timeout=1)
    with pytest.raises(ValueError, match="line break"):
        pool.request("GET", "/", [("X-Request-Id", "a\r\nX-Evil: 1")])


async def test_unreachable_upstream_is_unavailable() -> None:
    async with Upstream(serve_forever) as up:
        url = up.url
    pool = UpstreamPool(url, limit=1, connect_timeout=1, read_timeout=1)
    with pytest.raises(Unavailable, match="cannot connect"):
        await get(pool)
