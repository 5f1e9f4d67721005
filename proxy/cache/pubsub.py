"""The pub/sub subscription that keeps every process's generations coherent (redis-py's PubSub).

Read-your-writes across processes does not depend on *when* in the event loop a bump is read:
a write's answer waits until every subscribed process has acknowledged its bump
(`Generations.announce`), and a process acknowledges only after it has applied the bump
(`Generations.on_message`). So a request sent after the write's answer finds the generations
already moved, whichever loop turn the reader task ran in (tests/test_pubsub.py pins it). A
bump read in the same loop turn as a hit is applied after that hit; that can only matter once
an acknowledgement timed out, when the peer had not read the bump in time anyway.

redis-py reconnects and resubscribes by itself; that would hide a gap in which bumps were
missed. Here retries are off: a lost connection ends the subscription, the state goes down (the
cache is bypassed), and a fresh subscription resyncs the counters before the cache is trusted."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import Subscription

from proxy.ops.redisconn import UNAVAILABLE, locate_pubsub
from proxy.ops.redisurl import parse

log = logging.getLogger(__name__)
# A dead peer that never sends a reset must still end the subscription (blocking reads have no
# timeout): TCP keepalive probes after 10 s idle, every 5 s, 3 misses.
KEEPALIVE = {
    getattr(socket, name): value
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    if hasattr(socket, name)
}


class Subscriber:
    """Subscribes to channels, reconnecting with backoff; reports its state changes."""

    def __init__(
        self,
        url: str,
        channels: list[str],
        on_message: Callable[[bytes, bytes], None],
        on_state: Callable[[bool], Awaitable[None] | None],
        timeout_s: float,
    ) -> None:
        self.url = url
        self.target = parse(url)
        self.channels = channels
        self.on_message = on_message
        self.on_state = on_state
        self.timeout_s = timeout_s
        self._reading: asyncio.Task[None] | None = None

    async def _connect(self) -> tuple[Redis, PubSub]:
        """A client on the pub/sub node and its subscription, confirmed for every channel."""
        # On a cluster: the node the publishers use too (redisconn.ClusterBus), asked anew on
        # every (re)connect, through whichever seed answers.
        host, port = await asyncio.wait_for(
            locate_pubsub(self.url, self.channels[0], self.timeout_s), self.timeout_s * 2
        )
        client = Redis(
            host=host,
            port=port,
            **self.target.client_kwargs(),
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s,  # replies to commands; message reads block
            socket_keepalive=True,
            socket_keepalive_options=KEEPALIVE,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        pubsub = client.pubsub()
        try:
            await asyncio.wait_for(self._subscribe(pubsub), self.timeout_s)
        except BaseException:
            await _close(client, pubsub)
            raise
        return client, pubsub

    async def _subscribe(self, pubsub: PubSub) -> None:
        """SUBSCRIBE, then read until Redis has confirmed every channel (messages arriving
        meanwhile go to their handler): only then can a resync miss nothing."""
        await pubsub.subscribe(*(Subscription(name, self._handle) for name in self.channels))
        pending = len(self.channels)
        while pending:
            message = await pubsub.get_message(timeout=self.timeout_s)
            if message is not None and message["type"] == "subscribe":
                pending -= 1

    def _handle(self, message: dict[str, Any]) -> None:
        """A message, applied in the reader task as soon as it is parsed."""
        try:
            self.on_message(message["channel"], message["data"])
        except Exception:
            log.exception("pubsub: bad message ignored")

    @staticmethod
    async def _read(pubsub: PubSub) -> None:
        """Hand every message to its handler until the connection fails."""
        while True:
            await pubsub.get_message(timeout=None)

    def kick(self) -> None:
        """Drop the current subscription (it reconnects and resyncs)."""
        if self._reading is not None:
            self._reading.cancel()

    async def run(self) -> None:
        """Stay subscribed until cancelled."""
        delay = 0.05
        while True:
            try:
                client, pubsub = await self._connect()
            except UNAVAILABLE as exc:
                log.debug("pubsub: connect failed: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            reading = self._reading = asyncio.create_task(self._read(pubsub), name="pubsub-read")
            # Coming up may take retries (resync through a recovering Redis); losing the
            # subscription meanwhile abandons them.
            coming_up = asyncio.create_task(self._state(True))
            try:
                await asyncio.wait({reading})
                if not reading.cancelled() and reading.exception() is not None:
                    log.debug("pubsub: lost: %s", type(reading.exception()).__name__)
            finally:
                self._reading = None
                coming_up.cancel()
                reading.cancel()
                await asyncio.wait({reading})  # off the socket before it is closed
                await _close(client, pubsub)
                await self._state(False)

    async def _state(self, up: bool) -> None:
        result = self.on_state(up)
        if result is not None:
            await result


async def _close(client: Redis, pubsub: PubSub) -> None:
    """Close the subscription's connection and the client's pool; a dead peer is no error."""
    try:
        await pubsub.aclose()
        await client.aclose()
    except UNAVAILABLE as exc:
        log.debug("pubsub: close: %s", type(exc).__name__)
