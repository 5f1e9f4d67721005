"""Redis (or Redis Cluster) behind a circuit breaker: Redis trouble makes the proxy slower,
never wrong and never failing. Errors and timeouts count; after `failures` in a row the breaker
opens for `cooldown_s` and every call fails fast; one warning per outage, one line on recovery."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeAlias, TypeVar

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from proxy.ops.redisurl import parse

log = logging.getLogger(__name__)
T = TypeVar("T")
# What make_client gives: one Redis or a cluster (both speak the commands the proxy uses).
Client: TypeAlias = aioredis.Redis | RedisCluster
# What "Redis is not there" looks like (a cluster none of whose seeds answers raises the last).
UNAVAILABLE = (RedisError, OSError, TimeoutError, RedisClusterException)


class RedisDown(Exception):
    """Redis is unavailable (breaker open, error or timeout); callers degrade."""


def is_cluster(url: str) -> bool:
    """Whether the URL names a Redis Cluster (`redis+cluster://host:port[,host:port]`)."""
    return parse(url).cluster


class Publisher(Protocol):
    """What the generation bus publishes through: a client, or a ClusterBus on a cluster."""

    def publish(self, channel: str, message: bytes) -> Awaitable[int]: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Publisher, covariant=True)


def make_client(url: str, timeout_s: float, max_connections: int = 32) -> Client:
    """A redis-py asyncio client for url, with no retries (the breaker decides) and timeouts.
    A cluster URL's seeds all go to RedisCluster as `startup_nodes`: any one that answers is
    enough to learn the topology."""
    if parse(url).cluster:
        return make_cluster_client(url, timeout_s, max_connections)
    # A bounded pool: a burst of requests queues for a connection instead of opening hundreds.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=False,
    )
    return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))


def make_cluster_client(url: str, timeout_s: float, max_connections: int = 32) -> RedisCluster:
    """make_client for a cluster URL (ValueError for another)."""
    target = parse(url)
    if not target.cluster:
        raise ValueError("not a Redis Cluster URL")
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        max_connections=max_connections,
        **target.client_kwargs(),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=False,
    )


class ClusterBus:
    """Pub/sub on a cluster, pinned to one node: the master owning `channel`'s hash slot.

    PUBLISH answers how many subscribers *of the node it ran on* received the message, and
    acknowledgements are awaited for that many, so publishers and subscribers must meet on the
    same node. Every process derives it from the cluster's own slot map (not from the order or
    the liveness of the seeds in its URL), so they all agree, and follow a failover."""

    def __init__(self, client: RedisCluster, channel: str) -> None:
        self.client = client
        self.channel = channel

    async def publish(self, channel: str, message: bytes) -> int:
        """PUBLISH on the pub/sub node."""
        node = await pubsub_node(self.client, self.channel)
        receivers = await self.client.execute_command(
            "PUBLISH", channel, message, target_nodes=node
        )
        return int(receivers)

    async def aclose(self) -> None:
        """Close the cluster client."""
        await self.client.aclose()


async def pubsub_node(client: RedisCluster, channel: str) -> ClusterNode:
    """The ClusterNode owning channel's slot (learning the topology through any seed; at once
    when it is already known)."""
    await client.initialize()
    node = client.get_node_from_key(channel)
    if node is None:
        raise RedisClusterException(f"no node serves the slot of {channel}")
    return node


async def locate_pubsub(url: str, channel: str, timeout_s: float) -> tuple[str, int]:
    """(host, port) where pub/sub on channel meets: the URL's node, or for a cluster the master
    owning channel's slot, asked of whichever seed answers first."""
    target = parse(url)
    if not target.cluster:
        return target.nodes[0]
    client = make_cluster_client(url, timeout_s, max_connections=2)
    try:
        node = await pubsub_node(client, channel)
        return node.host, int(node.port)
    finally:
        await client.aclose()


class RedisGuard(Generic[C]):
    """Runs Redis calls (on a client of type C) through the breaker."""

    def __init__(
        self,
        client: C,
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

    async def run(self, call: Callable[[C], Awaitable[T]]) -> T:
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
        except UNAVAILABLE as exc:
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
