"""GET /realtime/v1/websocket: one client's socket and the Phoenix messages it sends.

The socket's `apikey` (query, else header) must be a valid token: nothing is upgraded otherwise.
Each join names the token its channel runs as (`access_token`, else the apikey), verified like any
request (revocation included) and replaced by later `access_token` messages; its user's roles are
read once and then kept current by the change feed. A client that may be reconnecting (proxy/
realtime/hub.py, may_have_missed) is told by a system message that it may have missed events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import psycopg
from aiohttp import WSMsgType, web

from proxy.gate.denylist import revocation_id
from proxy.gate.gate import RateLimited, token_of, verified
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError, Unauthorized
from proxy.ops.keys import SETTINGS
from proxy.realtime import protocol
from proxy.realtime.bindings import BadBinding, parse
from proxy.realtime.broadcast import broadcast
from proxy.realtime.hub import Channel
from proxy.realtime.keys import FEED
from proxy.realtime.outbox import Outbox

log = logging.getLogger(__name__)
MAX_MESSAGE = 256 * 1024
READY_WAIT_S = 3.0
MISSED = "Reconnected: events may have been missed while disconnected"


def claims_of(identity: Identity) -> str:
    """The claims the database is given to decide as this user (PostgREST's request.jwt.claims)."""
    return orjson.dumps(identity.claims, option=orjson.OPT_SORT_KEYS).decode()


class Socket:
    """One connection: its version, its apikey's identity, its channels by topic."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, vsn: str, apikey: str
    ) -> None:
        self.request = request
        self.feed = request.app[FEED]
        self.hub = self.feed.hub
        self.settings = request.app[SETTINGS]
        self.ws = ws
        self.vsn = vsn
        self.apikey = apikey
        self.outbox = Outbox(ws, self.settings.realtime_queue_size, request.transport)
        self.channels: dict[str, Channel] = {}

    def reply(self, message: protocol.Message, status: str, response: dict[str, Any]) -> None:
        """phx_reply to message."""
        self.outbox.push(protocol.reply(self.vsn, message, status, response))

    async def handle(self, message: protocol.Message) -> None:
        """One client message."""
        if message.topic == "phoenix":
            return self.reply(message, "ok", {})  # heartbeat
        if message.event == "phx_join":
            return await self.join(message)
        channel = self.channels.get(message.topic)
        if channel is None or channel not in self.hub.channels:
            return self.reply(message, "error", {"reason": "unmatched topic"})
        if message.event == "phx_leave":
            self.leave(message.topic)
            return self.reply(message, "ok", {})
        if message.event == "access_token":
            return await self.refresh(channel, message)
        if message.event == "broadcast":
            await broadcast(self.request.app, self.hub, channel, message.payload)
            return self.reply(message, "ok", {}) if message.ref else None
        return self.reply(message, "error", {"reason": f"{message.event} is not supported"})

    async def join(self, message: protocol.Message) -> None:
        """phx_join: verify the channel's token, parse its bindings, start delivering."""
        others = len(self.channels) - (message.topic in self.channels)
        if others >= self.settings.realtime_max_channels:
            return self.reply(message, "error", {"reason": "too many channels on this socket"})
        if not self.feed.ready.is_set():
            # The published tables are read when LISTEN is up: give it a moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READY_WAIT_S):
                    await self.feed.ready.wait()
        config = message.payload.get("config") or {}
        token = message.payload.get("access_token") or self.apikey
        try:
            if not isinstance(token, str):
                raise Unauthorized("access_token must be a string", reason="malformed")
            identity = await verified(self.request, token)
            if not isinstance(config, dict):
                raise BadBinding("config must be an object")
            columns = self.feed.catalog.columns()
            raw = config.get("postgres_changes") or []
            if not isinstance(raw, list):
                raise BadBinding("postgres_changes must be a list")
            bindings = tuple(parse(entry, columns) for entry in raw)
            roles = await self.feed.roles_of(identity.subject)
        except Unauthorized as exc:
            return self.refuse(message, f"Invalid token: {exc.message}")
        except RateLimited as exc:  # too many failed attempts from this address
            return self.refuse(message, exc.message)
        except BadBinding as exc:
            return self.refuse(message, str(exc))
        except (psycopg.Error, OSError) as exc:
            log.warning("realtime: join refused, memberships not read (%s)", type(exc).__name__)
            return self.refuse(message, "Database unavailable; retry")
        broadcast_config = config.get("broadcast") or {}
        channel = Channel(
            outbox=self.outbox,
            vsn=self.vsn,
            topic=message.topic,
            join_ref=message.join_ref or message.ref,
            bindings=bindings,
            user=identity.subject,
            session=revocation_id(identity),
            exp=identity.exp,
            claims=claims_of(identity),
            broadcast_self=isinstance(broadcast_config, dict)
            and bool(broadcast_config.get("self")),
        )
        # A rejoin replaces the channel, as Phoenix does: only now, so it misses nothing.
        self.leave(message.topic)
        self.hub.add(channel, roles)
        self.channels[message.topic] = channel
        self.reply(message, "ok", {"postgres_changes": [b.reply() for b in bindings]})
        if bindings:
            self.hub.system(channel, "ok", "Subscribed to PostgreSQL", "postgres_changes")
            if self.hub.may_have_missed(channel.user, channel.topic):
                self.hub.system(channel, "ok", MISSED, "postgres_changes")

    def refuse(self, message: protocol.Message, reason: str) -> None:
        """An error reply to a join; a channel the topic had ends with it (the client now holds
        the topic as failed)."""
        self.leave(message.topic)
        self.reply(message, "error", {"reason": reason})

    def leave(self, topic: str) -> None:
        """Stop delivering to topic's channel."""
        channel = self.channels.pop(topic, None)
        if channel is not None:
            self.hub.remove(channel)

    async def refresh(self, channel: Channel, message: protocol.Message) -> None:
        """access_token: the channel runs as the new token from now on, or ends."""
        token = message.payload.get("access_token")
        try:
            if not isinstance(token, str) or not token:
                raise Unauthorized("access_token must be a token", reason="missing")
            identity = await verified(self.request, token)
        except (Unauthorized, RateLimited) as exc:
            self.channels.pop(channel.topic, None)
            return self.hub.close(channel, f"Invalid token: {exc.message}")
        if identity.subject != channel.user:
            try:
                roles = await self.feed.roles_of(identity.subject)
            except (psycopg.Error, OSError):
                self.channels.pop(channel.topic, None)
                return self.hub.close(channel, "Database unavailable; rejoin")
            self.hub.remove(channel)
            channel.user = identity.subject
            self.hub.add(channel, roles)
        channel.session = revocation_id(identity)
        channel.exp = identity.exp
        channel.claims = claims_of(identity)
        return None

    def close_all(self) -> None:
        """The socket ended without leaving its channels: forget them, and remember who may
        come back having missed events."""
        for topic, channel in tuple(self.channels.items()):
            if channel in self.hub.channels:
                self.hub.dropped(channel)
            self.leave(topic)


async def websocket(request: web.Request) -> web.StreamResponse:
    """The handler of GET /realtime/v1/websocket."""
    vsn = request.query.get("vsn", protocol.VSN1)
    if vsn not in protocol.VERSIONS:
        raise ProxyError(
            f"vsn must be one of {', '.join(protocol.VERSIONS)}", status=400, code="bad_request"
        )
    feed = request.app.get(FEED)
    if feed is None:
        raise ProxyError(
            "Realtime needs NIMBUS_DATABASE_URL", status=503, code="realtime_unavailable"
        )
    settings = request.app[SETTINGS]
    if len(feed.sockets) >= settings.realtime_max_sockets:
        raise ProxyError(
            "This process has no room for another socket", status=503, code="too_many_sockets"
        )
    query_key = request.query.getall("apikey", [])
    apikey = await token_of(
        request,
        request.headers.getall("Authorization", []),
        query_key or request.headers.getall("apikey", []),
    )
    await verified(request, apikey)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    socket = Socket(request, ws, vsn, apikey)
    feed.sockets.add(ws)
    writer = asyncio.create_task(socket.outbox.run(), name="realtime-writer")
    try:
        async for frame in ws:
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                message = protocol.decode(frame.data, vsn)
            except protocol.BadMessage as exc:
                await ws.close(code=1007, message=str(exc).encode()[:120])
                break
            await socket.handle(message)
    finally:
        socket.close_all()
        feed.sockets.discard(ws)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return ws
