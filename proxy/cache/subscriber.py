"""The pub/sub subscription that keeps every process's generations coherent.

It is a plain asyncio Protocol rather than redis-py's PubSub: a message is applied inside
`data_received`, in the same event-loop turn that reads it, before any request handler that
became runnable in that turn. So a bump that reached this process's socket before a request
did is always applied before that request looks at its L1 cache; a task-based reader would
leave a window of one or more loop turns."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from proxy.cache.resp import RespError, command
from proxy.cache.resp import parse as parse_resp
from proxy.ops.redisconn import UNAVAILABLE, locate_pubsub
from proxy.ops.redisurl import parse

log = logging.getLogger(__name__)
KEEPALIVE = (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))


class _SubscriberProtocol(asyncio.Protocol):
    def __init__(self, channels: list[bytes], on_message: Callable[[bytes, bytes], None]) -> None:
        self.channels = channels
        self.pending = len(channels)
        self.on_message = on_message
        self.buf = b""
        self.transport: asyncio.BaseTransport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        pos = 0
        while True:
            got = parse_resp(self.buf, pos)
            if got is None:
                break
            value, pos = got
            self._dispatch(value)
        self.buf = self.buf[pos:]

    def _dispatch(self, value) -> None:
        if isinstance(value, RespError):
            if not self.subscribed.done():
                self.subscribed.set_exception(value)
            return
        if isinstance(value, list) and len(value) == 3:
            kind = value[0]
            if kind == b"message" and value[1] in self.channels:
                try:
                    self.on_message(value[1], value[2])
                except Exception:
                    log.exception("pubsub: bad message ignored")
            elif kind == b"subscribe" and not self.subscribed.done():
                self.pending -= 1
                if self.pending == 0:
                    self.subscribed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("lost before subscribing"))


class Subscriber:
    """Subscribes to channels, reconnecting with backoff; reports its state changes."""

    def __init__(
        self,
        url: str,
        channels: list[str],
        on_message: Callable[[bytes, bytes], None],
        on_state: Callable[[bool], asyncio.Future | None],
        timeout_s: float,
    ) -> None:
        self.url = url
        target = parse(url)
        self.user = target.username
        self.password = target.password
        self.context = target.ssl_context()
        self.channels = [c.encode() for c in channels]
        self.on_message = on_message
        self.on_state = on_state
        self.timeout_s = timeout_s
        self._current: _SubscriberProtocol | None = None

    async def _connect(self) -> _SubscriberProtocol:
        loop = asyncio.get_running_loop()
        # On a cluster: the node the publishers use too (redisconn.ClusterBus), asked anew on
        # every (re)connect, through whichever seed answers.
        host, port = await asyncio.wait_for(
            locate_pubsub(self.url, self.channels[0].decode(), self.timeout_s), self.timeout_s * 2
        )
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _SubscriberProtocol(self.channels, self.on_message),
                host,
                port,
                ssl=self.context,
            ),
            self.timeout_s,
        )
        if self.password:
            auth = (self.user, self.password) if self.user else (self.password,)
            transport.write(command("AUTH", *auth))
        transport.write(command("SUBSCRIBE", *self.channels))
        try:
            await asyncio.wait_for(asyncio.shield(protocol.subscribed), self.timeout_s)
        except BaseException:
            transport.close()
            raise
        protocol.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A dead peer that never sends a reset must still end the subscription.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in KEEPALIVE:
                if hasattr(socket, option):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
        self._current = protocol
        return protocol

    def kick(self) -> None:
        """Drop the current subscription (it reconnects and resyncs)."""
        current = self._current
        if current is not None and current.transport is not None:
            current.transport.close()

    async def run(self) -> None:
        """Stay subscribed until cancelled."""
        delay = 0.05
        while True:
            try:
                protocol = await self._connect()
            except (*UNAVAILABLE, RespError, ConnectionError) as exc:
                log.debug("pubsub: connect failed: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            # Coming up may take retries (resync through a recovering Redis); losing the
            # subscription meanwhile abandons them.
            coming_up = asyncio.create_task(self._state(True))
            try:
                await protocol.lost
            finally:
                coming_up.cancel()
                protocol.transport.close()
                await self._state(False)

    async def _state(self, up: bool) -> None:
        result = self.on_state(up)
        if result is not None:
            await result
