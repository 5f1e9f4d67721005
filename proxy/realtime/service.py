"""Wiring: the route, the change feed's tasks for the life of the app, and the sockets closed
first thing on shutdown (clients reconnect elsewhere, told they may have missed events)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from proxy.cache.keys import BUS
from proxy.gate.keys import DENYLIST
from proxy.ops.keys import SETTINGS
from proxy.ops.pglisten import shared
from proxy.realtime.broadcast import deliver
from proxy.realtime.keys import FEED
from proxy.realtime.outbox import CLOSED
from proxy.realtime.socket import websocket
from proxy.realtime.source import Feed

PATH = "/realtime/v1/websocket"
CLOSE_WAIT_S = 2.0


async def realtime_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the feed and its tasks, when a database is configured."""
    settings = app[SETTINGS]
    tasks: list[asyncio.Task[None]] = []
    feed = None
    listen = shared(app)
    if listen is not None:
        feed = Feed(settings.database_url, settings.realtime_spill_keep_s)
        feed.attach(listen)
        app[FEED] = feed
        denylist = app.get(DENYLIST)
        if denylist is not None:
            denylist.on_revoke.append(feed.hub.end_session)  # a logout anywhere ends channels
        bus = app.get(BUS)
        if bus is not None:
            bus.on_announcement.append(lambda data: deliver(feed.hub, data))
        for job, name in (
            (feed.run, "realtime-feed"),
            (feed.prune_forever, "realtime-prune"),
            (feed.expire_forever, "realtime-expire"),
        ):
            tasks.append(asyncio.create_task(job(), name=name))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if feed is not None:
        await feed.db.close()


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: close every socket (going away), so graceful shutdown does not wait."""
    feed = app.get(FEED)
    if feed is None:
        return
    sockets = tuple(feed.sockets)
    CLOSED.labels("shutdown").inc(len(sockets))
    closing = [
        ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for ws in sockets
    ]
    # All at once, and not waiting long for clients that do not answer the close.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await asyncio.gather(*closing, return_exceptions=True)


def setup(app: web.Application) -> None:
    """Register the route and the feed's lifetime."""
    app.cleanup_ctx.append(realtime_context)
    app.on_shutdown.append(close_sockets)
    app.router.add_get(PATH, websocket)
