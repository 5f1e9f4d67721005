"""Start-up and shutdown of the Redis side: guards, the bus (generations + announcements), the
pub/sub subscriber, the LISTEN task, and the cache, limiter and denylist built on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.cache.generations import Generations
from proxy.cache.keys import BUS, CACHE, MEMBERS
from proxy.cache.listener import ChangeListener, attach
from proxy.cache.pubsub import Subscriber
from proxy.cache.store import ResponseCache
from proxy.cache.tenants import Call, MemberOrgs
from proxy.gate.clientip import parse_networks
from proxy.gate.denylist import Denylist
from proxy.gate.keys import DENYLIST, LIMITER
from proxy.gate.leases import RateLimiter
from proxy.ops.keys import SETTINGS, TRUSTED
from proxy.ops.metrics import DEPENDENCY_UP, REFRESH
from proxy.ops.pglisten import shared
from proxy.ops.redisconn import (
    Client,
    ClusterBus,
    RedisGuard,
    is_cluster,
    make_client,
    make_cluster_client,
)


async def redis_context(app: web.Application, *, call: Call) -> AsyncIterator[None]:
    """cleanup_ctx (bound to call, how to ask PostgREST as the caller, by create_app):
    everything that talks to Redis or LISTENs, opened and closed together."""
    settings = app[SETTINGS]
    timeout = settings.redis_timeout_ms / 1000

    def guard_for(url: str) -> RedisGuard[Client]:
        return RedisGuard(
            make_client(url, timeout),
            failures=settings.redis_breaker_failures,
            cooldown_s=settings.redis_breaker_cooldown_s,
        )

    guard = guard_for(settings.redis_url) if settings.redis_url else None
    cache_guard = guard_for(settings.cache_redis_url) if settings.cache_redis_url else guard
    generations = Generations(
        guard, settings.redis_prefix, ack_timeout_s=settings.coherence_wait_ms / 1000
    )
    bus = None
    if settings.redis_url and is_cluster(settings.redis_url):
        # Pub/sub counts receivers per node: publish on the node the subscribers listen on.
        bus = generations.bus = RedisGuard(
            ClusterBus(make_cluster_client(settings.redis_url, timeout), generations.channel),
            failures=settings.redis_breaker_failures,
            cooldown_s=settings.redis_breaker_cooldown_s,
        )
    app[BUS] = generations
    app[MEMBERS] = MemberOrgs(generations, call)

    def refresh_gauges() -> None:
        DEPENDENCY_UP.labels("redis").set(int(guard is not None and guard.available))
        DEPENDENCY_UP.labels("pubsub").set(int(generations.pubsub_up))
        DEPENDENCY_UP.labels("listener").set(int(generations.listener_up))

    app[REFRESH] = refresh_gauges
    app[DENYLIST] = Denylist(guard, settings.redis_prefix, generations)
    app[TRUSTED] = parse_networks(settings.trusted_proxies)
    tasks = []
    changes: ChangeListener | None = None
    if settings.rate_limit_enabled:
        app[LIMITER] = RateLimiter(
            guard, settings.redis_prefix, settings.rate_policies, processes=settings.workers
        )
        if guard is not None:
            tasks.append(asyncio.create_task(app[LIMITER].sweep(), name="lease-sweeper"))
    if settings.cache_enabled:
        app[CACHE] = ResponseCache(
            generations,
            cache_guard,
            prefix=settings.redis_prefix,
            l1_bytes=settings.cache_l1_bytes,
            max_entry_bytes=settings.cache_max_bytes,
            min_uses=settings.cache_min_uses,
        )
        listen = shared(app)
        if listen is not None:
            changes = attach(listen, generations)
    if guard is not None:
        generations.pubsub_up = False
        subscriber = Subscriber(
            settings.redis_url,
            [generations.channel, generations.ack_channel],
            generations.on_message,
            generations.set_pubsub,
            timeout_s=max(timeout, 1.0),
        )
        generations.resubscribe = subscriber.kick
        tasks.append(asyncio.create_task(subscriber.run(), name="pubsub"))
    yield
    if changes is not None:
        await changes.close()
    if settings.cache_enabled:
        await app[CACHE].close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for g in {id(x): x for x in (guard, cache_guard, bus) if x is not None}.values():
        await g.close()


def cache_status(app: web.Application) -> dict[str, object] | None:
    """The cache's part of /ready (informational), None on a proxy without a cache."""
    cache = app.get(CACHE)
    if cache is None:
        return None
    gens = cache.generations
    return {
        "ok": True,
        "coherent": gens.coherent,
        "pubsub": gens.pubsub_up,
        "listener": gens.listener_up,
        "redis": None if gens.guard is None else gens.guard.available,
    }
