"""LISTEN nimbus_events: the one connection per process that feeds the hub. Reconnects with
backoff; every (re)connect resyncs open streams, since events may have been missed meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
import psycopg
from aiohttp import web

from proxy.keys import SETTINGS
from proxy.metrics import DEPENDENCY_UP
from proxy.notifications.hub import Event, Hub, frame_of

log = logging.getLogger(__name__)
CHANNEL = "nimbus_events"
HUB = web.AppKey("notifications_hub", Hub)


def event_of(payload: str) -> Event | None:
    """The Event of a NOTIFY payload; None (logged) when it is not one."""
    try:
        return frame_of(orjson.loads(payload))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.warning("notifications: ignored a malformed %s payload", CHANNEL)
        return None


async def listen(database_url: str, hub: Hub, *, timeout_s: float = 5) -> None:
    """Run until cancelled."""
    delay = 0.1
    conninfo = psycopg.conninfo.make_conninfo(
        database_url,
        application_name="nimbus-events",
        connect_timeout=max(1, int(timeout_s)),
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"listen {CHANNEL}")
                hub.listening(True)
                DEPENDENCY_UP.labels("events_listener").set(1)
                delay = 0.1
                log.info("notifications: listening on %s", CHANNEL)
                async for notify in conn.notifies():
                    event = event_of(notify.payload)
                    if event is not None:
                        hub.publish(event)
        except (psycopg.Error, OSError) as exc:
            if hub.ready.is_set():
                log.warning("notifications: LISTEN lost (%s); reconnecting", type(exc).__name__)
        finally:
            hub.listening(False)
            DEPENDENCY_UP.labels("events_listener").set(0)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def events_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the hub, and its LISTEN task when a database is configured."""
    settings = app[SETTINGS]
    hub = Hub(settings.sse_queue_size, settings.sse_max_subscribers)
    app[HUB] = hub
    task = None
    if settings.listen_enabled and settings.database_url:
        task = asyncio.create_task(listen(settings.database_url, hub), name="events-listener")
    yield
    hub.close_all("shutdown")
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def end_streams(app: web.Application) -> None:
    """on_shutdown: end every stream so graceful shutdown does not wait on them."""
    hub = app.get(HUB)
    if hub is not None:
        hub.close_all("shutdown")


def setup(app: web.Application) -> None:
    """Open the hub with the app; end the streams first thing on shutdown."""
    app.cleanup_ctx.append(events_context)
    app.on_shutdown.append(end_streams)
