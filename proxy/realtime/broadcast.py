"""Broadcast between the clients of one organization: a message sent on a topic reaches the
channels of that topic whose users share an organization with the sender (as the roles say at
delivery), on every process and host through the Redis bus; without Redis, this process's."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from aiohttp import web

from proxy.cache.keys import BUS
from proxy.realtime.hub import Channel, Hub

PROCESS = f"{uuid.uuid4().hex[:12]}-{os.getpid()}"
KEY = "realtime_broadcast"
MAX_EVENT = 255


def sender_of(channel: Channel) -> str:
    """A name for channel unique across processes (so `self: false` can skip it)."""
    return f"{PROCESS}:{id(channel)}"


async def broadcast(
    app: web.Application, hub: Hub, channel: Channel, payload: dict[str, Any]
) -> None:
    """Send a client's broadcast (ignored from anonymous callers and without an organization)."""
    event = payload.get("event")
    if channel.exp <= time.time():
        return  # expired: the hub closes it within a quarter of a second
    organizations = sorted(hub.roles.get(channel.user or "", {}))
    if not isinstance(event, str) or not event or len(event) > MAX_EVENT or not organizations:
        return
    message = {"type": "broadcast", "event": event, "payload": payload.get("payload")}
    data = {
        KEY: {
            "topic": channel.topic,
            "organizations": organizations,
            "sender": sender_of(channel),
            "message": message,
        }
    }
    bus = app.get(BUS)
    if bus is not None and bus.bus is not None and bus.connected:
        await bus.announce(data, wait=False)  # every process, this one included, delivers
    else:
        deliver(hub, data)


def deliver(hub: Hub, data: dict[str, Any]) -> None:
    """Hand a broadcast (from the bus or this process) to the channels it may reach."""
    body = data.get(KEY)
    if not isinstance(body, dict):
        return
    topic, sender = body.get("topic"), body.get("sender")
    organizations = set(body.get("organizations") or ())
    for channel in tuple(hub.channels):
        if channel.topic != topic or channel.user is None:
            continue
        if sender == sender_of(channel) and not channel.broadcast_self:
            continue
        if organizations & set(hub.roles.get(channel.user, {})):
            channel.send("broadcast", body["message"])
