"""LISTEN nimbus_events, on the process's LISTEN connection (proxy/ops/pglisten.py), feeds the
hub. Every (re)connect resyncs open streams, since events may have been missed meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from proxy.gate.keys import DENYLIST
from proxy.notifications.hub import Event, Hub, frame_of
from proxy.notifications.members import CHANNEL as CHANGES
from proxy.notifications.members import MembershipWatch
from proxy.notifications.slots import StreamSlots
from proxy.ops.keys import SETTINGS
from proxy.ops.metrics import DEPENDENCY_UP
from proxy.ops.pglisten import Listen, shared

log = logging.getLogger(__name__)
CHANNEL = "nimbus_events"
HUB = web.AppKey("notifications_hub", Hub)
SLOTS = web.AppKey("stream_slots", StreamSlots)


def event_of(payload: str) -> Event | None:
    """The Event of a NOTIFY payload; None (logged) when it is not one."""
    try:
        return frame_of(orjson.loads(payload))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.warning("notifications: ignored a malformed %s payload", CHANNEL)
        return None


def attach(listen: Listen, hub: Hub, watch: MembershipWatch) -> None:
    """Add the hub to the process's LISTEN connection: events go to it, every (re)connect
    resyncs open streams, and membership changes (nimbus_changes, in commit order with the
    events) go to the watch."""

    def on_state(up: bool) -> None:
        hub.listening(up)
        DEPENDENCY_UP.labels("events_listener").set(int(up))

    def on_notify(payload: str) -> None:
        event = event_of(payload)
        if event is not None:
            hub.publish(event)

    listen.add({CHANNEL: on_notify, CHANGES: watch.on_change}, on_state)


async def events_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the hub, and its LISTEN task when a database is configured."""
    settings = app[SETTINGS]
    hub = Hub(settings.sse_queue_size, settings.sse_max_subscribers)
    app[HUB] = hub
    denylist = app.get(DENYLIST)
    if denylist is not None:
        denylist.on_revoke.append(hub.end_session)  # a logout anywhere ends its streams here
    guard = denylist.guard if denylist is not None else None  # the counters' Redis
    app[SLOTS] = slots = StreamSlots(
        guard,
        settings.redis_prefix,
        per_user=settings.sse_max_per_user,
        per_organization=settings.sse_max_per_organization,
    )
    tasks = []
    if guard is not None:
        tasks.append(asyncio.create_task(slots.renew_forever(), name="stream-slots"))
    listen = shared(app)
    if listen is not None:
        watch = MembershipWatch(settings.database_url, hub)
        tasks.append(asyncio.create_task(watch.run(), name="membership-watch"))
        attach(listen, hub, watch)
    yield
    hub.close_all("shutdown")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def end_streams(app: web.Application) -> None:
    """on_shutdown: end every stream so graceful shutdown does not wait on them."""
    hub = app.get(HUB)
    if hub is not None:
        hub.close_all("shutdown")


def setup(app: web.Application) -> None:
    """Open the hub with the app; end the streams first thing on shutdown."""
    app.cleanup_ctx.append(events_context)
    app.on_shutdown.append(end_streams)
