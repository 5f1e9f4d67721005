"""LISTEN nimbus_events: the one connection per process that feeds the hub. Reconnects with
backoff; every (re)connect resyncs open streams, since events may have been missed meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from proxy.keys import SETTINGS
from proxy.metrics import DEPENDENCY_UP
from proxy.notifications.hub import Event, Hub, frame_of
from proxy.pglisten import listen_forever

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


async def listen(database_url: str, hub: Hub) -> None:
    """Run until cancelled: events go to the hub; every (re)connect resyncs open streams."""

    def on_state(up: bool) -> None:
        hub.listening(up)
        DEPENDENCY_UP.labels("events_listener").set(int(up))

    def on_notify(payload: str) -> None:
        event = event_of(payload)
        if event is not None:
            hub.publish(event)

    await listen_forever(
        database_url,
        CHANNEL,
        on_notify=on_notify,
        on_state=on_state,
        application_name="nimbus-events",
    )


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
