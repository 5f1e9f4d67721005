"""What a socket has still to send: a bounded queue drained by one writer task. A client that
reads slower than its channels produce is disconnected with close code 1013 (try again later) and
a reason saying so, rather than buffered without bound; it reconnects and is told it may have
missed events."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from aiohttp import web
from prometheus_client import Counter

log = logging.getLogger(__name__)
SLOW_CLOSE_CODE = 1013
CLOSE_WAIT_S = 1.0
CLOSED = Counter(
    "nimbus_realtime_closed_total",
    "Realtime sockets ended by the proxy, by reason (slow, shutdown).",
    ["reason"],
)


class Outbox:
    """push(frame) never waits; run() writes frames in order until the socket ends."""

    __slots__ = ("_closing", "_frames", "_wake", "limit", "slow", "transport", "ws")

    def __init__(
        self, ws: web.WebSocketResponse, limit: int, transport: asyncio.BaseTransport | None = None
    ) -> None:
        self.ws = ws
        self.transport = transport  # aborted if even the close frame cannot be written
        self.limit = limit
        self.slow = False
        self._frames: deque[str] = deque()
        self._wake = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None

    def push(self, frame: str) -> None:
        """Queue frame; past the limit the socket is marked slow and closed at once (the writer
        may be the one stuck, waiting for the client to read)."""
        if self.slow:
            return
        if len(self._frames) >= self.limit:
            self.slow = True
            self._frames.clear()
            self._closing = asyncio.get_running_loop().create_task(self._close_slow())
        else:
            self._frames.append(frame)
            self._wake.set()

    async def _close_slow(self) -> None:
        CLOSED.labels("slow").inc()
        log.info("realtime: closing a slow socket (%d messages queued)", self.limit)
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self.ws.close(
                    code=SLOW_CLOSE_CODE,
                    message=b"too slow: more than %d messages queued" % self.limit,
                )
        except (TimeoutError, ConnectionError):
            if isinstance(self.transport, asyncio.WriteTransport):
                self.transport.abort()

    async def run(self) -> None:
        """Write queued frames in order until cancelled or the socket is closed as slow."""
        frames = self._frames
        while not self.slow:
            await self._wake.wait()
            self._wake.clear()
            while frames and not self.slow:
                await self.ws.send_str(frames.popleft())
