"""Redis (or Redis Cluster) behind a circuit breaker: Redis trouble makes the proxy slower,
never wrong and never failing. Errors and timeouts count; after `failures` in a row the breaker
opens for `cooldown_s` and every call fails fast; one warning per outage, one line on recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


class RedisDown(Exception):
    """Redis is unavailable (breaker open, error or timeout); callers degrade."""


def is_cluster(url: str) -> bool:
    """Whether the URL names a Redis Cluster (`redis+cluster://host:port`)."""
    return url.startswith(CLUSTER_SCHEMES)


def first_node(url: str) -> str:
    """The plain redis:// URL of the first node a cluster URL names."""
    scheme, rest = url.split("://", 1)
    host = rest.split(",", 1)[0]
    return scheme.replace("+cluster", "") + "://" + host


def make_client(url: str, timeout_s: float, max_connections: int = 32):
    """A redis-py asyncio client for url, with no retries (the breaker decides) and timeouts."""
    common = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": False,
    }
    if is_cluster(url):
        plain = url.replace("+cluster", "", 1)
        return RedisCluster.from_url(plain, max_connections=max_connections, **common)
    # A bounded pool: a burst of requests queues for a connection instead of opening hundreds.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s, **common
    )
    return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))


class RedisGuard:
    """Runs Redis calls through the breaker."""

    def __init__(
        self,
        client,
        *,
        failures: int = 3,
        cooldown_s: float = 1.0,
        max_inflight: int = 32,
        wait_s: float = 0.5,
    ) -> None:
        self.client = client
        # At most as many calls in flight as the pool has connections (a cluster client raises
        # instead of waiting when its per-node pool is exhausted); waiting is bounded too.
        self._slots = asyncio.Semaphore(max_inflight)
        self.wait_s = wait_s
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._errors = 0
        self._open_until = 0.0
        self._outage = False

    @property
    def available(self) -> bool:
        """False while the breaker is open."""
        return time.monotonic() >= self._open_until

    async def run(self, call: Callable[[object], Awaitable[T]]) -> T:
        """call(client), or RedisDown."""
        if not self.available:
            raise RedisDown("circuit open")
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self.wait_s)
            except TimeoutError:
                raise RedisDown("busy") from None  # local congestion: not Redis's fault
        else:
            await self._slots.acquire()
        try:
            result = await call(self.client)
        except ResponseError as exc:
            # Redis answered (a wrong-type key, a script error): not an outage.
            raise RedisDown(type(exc).__name__) from None
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise RedisDown(type(exc).__name__) from None
        finally:
            self._slots.release()
        if self._errors or self._outage:
            self._errors = 0
            if self._outage:
                self._outage = False
                log.warning("redis: available again")
        return result

    def _failed(self, exc: Exception) -> None:
        self._errors += 1
        if self._errors >= self.failures:
            self._open_until = time.monotonic() + self.cooldown_s
            if not self._outage:
                self._outage = True
                log.warning("redis: unavailable (%s); serving uncached", type(exc).__name__)

    async def close(self) -> None:
        """Close the client's connections (its pool too: make_client gave it one of its own)."""
        if isinstance(self.client, aioredis.Redis):
            await self.client.aclose(close_connection_pool=True)
        else:
            await self.client.aclose()
