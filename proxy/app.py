"""create_app(settings): the middleware chain, the routes, and the shared resources' lifetimes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from proxy import health, rest
from proxy.cache import ResponseCache
from proxy.config import Settings
from proxy.generations import Generations
from proxy.identity import Verifier
from proxy.jwks import JWKS
from proxy.keys import CACHE, SESSION, SETTINGS, VERIFIER
from proxy.listener import listen
from proxy.middlewares import error_middleware, request_id_middleware
from proxy.redisconn import RedisGuard, first_node, is_cluster, make_client
from proxy.subscriber import Subscriber
from proxy.upstream import open_session


def create_app(settings: Settings) -> web.Application:
    """The proxy application for these settings; resources open on startup, close on cleanup."""
    app = web.Application(
        middlewares=[request_id_middleware(), error_middleware()],
        client_max_size=settings.max_body_bytes,
        handler_args={
            "max_field_size": settings.max_header_bytes,
            "max_line_size": settings.max_header_bytes,
        },
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_upstream)
    if settings.cache_enabled:
        app.cleanup_ctx.append(_cache)
    health.setup(app)
    rest.setup(app)
    return app


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    """The keep-alive session to PostgREST and the verifier that may fetch JWKS through it."""
    settings = app[SETTINGS]
    session = open_session(
        connect_timeout=settings.upstream_connect_timeout_s,
        read_timeout=settings.upstream_timeout_s,
        limit=settings.upstream_max_connections,
    )
    jwks = JWKS(settings.jwks_url, session, settings.jwks_cooldown_s) if settings.jwks_url else None
    if jwks is not None:
        await jwks.refresh()
    app[SESSION] = session
    app[VERIFIER] = Verifier(
        secret=settings.secret if (settings.jwt_secret or not settings.jwks_url) else None,
        jwks=jwks,
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        allowed_roles=settings.allowed_roles,
        max_bytes=settings.jwt_max_bytes,
        memo_size=settings.token_cache_size,
    )
    yield
    await session.close()


async def _cache(app: web.Application) -> AsyncIterator[None]:
    """Redis guard(s), generations, the pub/sub subscriber and the LISTEN task, and the cache."""
    settings = app[SETTINGS]
    timeout = settings.redis_timeout_ms / 1000

    def guard_for(url: str) -> RedisGuard:
        return RedisGuard(
            make_client(url, timeout),
            failures=settings.redis_breaker_failures,
            cooldown_s=settings.redis_breaker_cooldown_s,
        )

    guard = guard_for(settings.redis_url) if settings.redis_url else None
    cache_guard = guard_for(settings.cache_redis_url) if settings.cache_redis_url else guard
    bus = None
    if settings.redis_url and is_cluster(settings.redis_url):
        # Pub/sub counts receivers per node: publish on the node the subscribers listen on.
        bus = guard_for(first_node(settings.redis_url))
    generations = Generations(
        guard, settings.redis_prefix, bus=bus, ack_timeout_s=settings.coherence_wait_ms / 1000
    )
    app[CACHE] = ResponseCache(
        generations,
        cache_guard,
        prefix=settings.redis_prefix,
        l1_bytes=settings.cache_l1_bytes,
        max_entry_bytes=settings.cache_max_bytes,
    )
    tasks = []
    if guard is not None:
        generations.pubsub_up = False
        subscriber = Subscriber(
            settings.redis_url,
            [generations.channel, generations.ack_channel],
            generations.on_message,
            generations.set_pubsub,
            timeout_s=max(timeout, 1.0),
        )
        tasks.append(asyncio.create_task(subscriber.run(), name="pubsub"))
    if settings.listen_enabled and settings.database_url:
        tasks.append(asyncio.create_task(listen(settings.database_url, generations), name="listen"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for g in {id(x): x for x in (guard, cache_guard, bus) if x is not None}.values():
        await g.close()
