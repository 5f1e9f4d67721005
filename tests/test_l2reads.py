"""Redis reads of one event-loop turn go out as one pipeline (proxy/cache/l2reads.py), against
the real Redis: each caller gets its own value, in its own order, and one Redis call was made."""

from __future__ import annotations

import asyncio
import secrets

from proxy.cache.l2reads import L2Reads
from proxy.ops.redisconn import RedisGuard, make_client
from tests.support.redis_server import SHARED_REDIS


class CountingGuard(RedisGuard):
    """The real guard, counting the Redis calls it makes."""

    calls = 0

    async def run(self, call):
        self.calls += 1
        return await super().run(call)


async def test_one_turns_reads_are_one_redis_call() -> None:
    client = make_client(SHARED_REDIS, 1.0)
    prefix = "nimbus-l2reads-" + secrets.token_hex(4)
    names = [f"{prefix}:{i}" for i in range(6)]
    try:
        await client.set(names[0], b"zero")
        await client.set(names[3], b"three")
        guard = CountingGuard(client)
        reads = L2Reads(guard)
        values = await asyncio.gather(*(reads.get(name) for name in names))
        assert values == [b"zero", None, None, b"three", None, None]
        assert guard.calls == 1
        assert await reads.get(names[3]) == b"three"  # a lone read: a plain GET
        assert guard.calls == 2
    finally:
        await client.delete(*names)
        await client.aclose(close_connection_pool=True)


async def test_redis_down_reads_as_absent() -> None:
    client = make_client("redis://127.0.0.1:1", 0.2)  # nothing listens there
    reads = L2Reads(RedisGuard(client))
    try:
        assert await asyncio.gather(reads.get("a"), reads.get("b")) == [None, None]
    finally:
        await client.aclose(close_connection_pool=True)
