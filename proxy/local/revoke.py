"""Revoking a session from outside the proxies (the `nimbus revoke` command)."""

from __future__ import annotations

import time

import orjson
from redis.asyncio.cluster import RedisCluster

from proxy.config import Settings
from proxy.ops.redisconn import ClusterBus, Publisher, make_client


async def revoke_session(settings: Settings, session_id: str, ttl: int) -> int:
    """Store the revocation and announce it; returns how many processes heard it."""
    client = make_client(settings.redis_url, settings.redis_timeout_ms / 1000)
    exp = time.time() + ttl
    prefix = settings.redis_prefix
    try:
        await client.set(f"{prefix}:dl:{session_id}", str(exp), ex=ttl + 1)
        message = orjson.dumps({"deny": session_id, "exp": exp, "id": "cli", "from": None})
        channel = f"{prefix}:events"
        # On a cluster, where the proxies subscribe (so the count of receivers is theirs).
        bus: Publisher = ClusterBus(client, channel) if isinstance(client, RedisCluster) else client
        return await bus.publish(channel, message)
    finally:
        await client.aclose()
