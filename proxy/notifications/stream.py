"""GET /api/v1/notifications/stream: Server-Sent Events of the caller's organizations.

Order of work, so that nothing is lost or repeated at the switch from history to live:
subscribe (live events start queueing), replay the missed rows after Last-Event-ID from the
table through PostgREST with the caller's token (RLS applies), then send the queue, skipping
the ids the replay already sent. The stream ends when the token expires or is revoked, on a
LISTEN reconnect (resync), on shutdown, or when the client reads too slowly; the client
reconnects with Last-Event-ID and a fresh token."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable

import orjson
from aiohttp import web

from proxy.api import postgrest
from proxy.api.inputs import parse_query
from proxy.api.problems import ApiError
from proxy.api.route import Route
from proxy.gate.denylist import revocation_id
from proxy.gate.gate import identity_of, subject_of
from proxy.gate.identity import Identity
from proxy.gate.keys import DENYLIST
from proxy.notifications.hub import CLOSED, Closed, Hub, Subscription, frame_of
from proxy.notifications.listener import HUB, SLOTS
from proxy.notifications.slots import CapReached
from proxy.ops.errors import ProxyError
from proxy.ops.keys import ON_DISCONNECT, SETTINGS, TRUSTED

log = logging.getLogger(__name__)
PAGE = 500
EVENT_ID = re.compile(r"[0-9]{1,19}")
READY_WAIT_S = 3.0
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}


def last_event_id(request: web.Request) -> int | None:
    """Last-Event-ID (header, else `?last_event_id=`) as a notification id; 400 unless it is
    1 to 19 ASCII digits (str.isdigit would take superscripts and other scripts' digits, which
    int() then refuses)."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw.strip() == "":
        return None
    if not EVENT_ID.fullmatch(raw.strip()):
        raise ApiError(
            400,
            "bad_request",
            "Last-Event-ID must be a notification id (ASCII digits)",
            [{"field": "Last-Event-ID", "message": "must be 1 to 19 digits 0-9"}],
        )
    return int(raw.strip())


async def organizations(request: web.Request, identity: Identity) -> frozenset[str]:
    """The caller's organizations, read as the caller (RLS decides), once per stream."""
    reply = await postgrest.call(
        request,
        identity,
        "GET",
        "memberships",
        params=[("select", "organization_id"), ("user_id", f"eq.{identity.subject}")],
    )
    return frozenset(row["organization_id"] for row in reply.json() or [])


async def missed(
    request: web.Request, identity: Identity, orgs: frozenset[str], after: int, limit: int
) -> list[dict[str, object]]:
    """Up to limit notifications of orgs with id > after, oldest first, as the caller."""
    reply = await postgrest.call(
        request,
        identity,
        "GET",
        "notifications",
        params=[
            ("select", "id,organization_id,kind,payload"),
            ("id", f"gt.{after}"),
            ("organization_id", "in.(" + ",".join(sorted(orgs)) + ")"),
            ("order", "id.asc"),
            ("limit", str(limit)),
        ],
    )
    return reply.json() or []


class Stream:
    """One open stream: the response, its subscription, and the deadlines that end it."""

    def __init__(self, request: web.Request, identity: Identity, sub: Subscription) -> None:
        self.request = request
        self.identity = identity
        self.sub = sub
        self.settings = request.app[SETTINGS]
        self.response = web.StreamResponse(
            headers={**HEADERS, "X-Request-Id": request.get("request_id", "")}
        )

    async def send(self, data: bytes) -> None:
        """Write data; a client that cannot take it within the write timeout is given up."""
        async with asyncio.timeout(self.settings.sse_write_timeout_s):
            await self.response.write(data)

    async def end(self, reason: str) -> None:
        """Tell the client why the stream ends (it reconnects with Last-Event-ID)."""
        await self.send(b"event: end\ndata: " + orjson.dumps({"reason": reason}) + b"\n\n")

    async def replay(self, after: int) -> tuple[set[int], bool]:
        """Send the missed events after `after`; (ids sent, whether more remain)."""
        sent: set[int] = set()
        budget = self.settings.sse_replay_max
        while budget > 0:
            rows = await missed(
                self.request, self.identity, self.sub.organizations, after, min(PAGE, budget)
            )
            for row in rows:
                event = frame_of(row)
                await self.send(event.frame)
                sent.add(event.id)
                after = event.id
            budget -= len(rows)
            if len(rows) < PAGE:
                return sent, False
        return sent, True

    async def live(self, replayed: set[int]) -> None:
        """Send live events and heartbeats until the token expires or the hub closes us."""
        heartbeat = self.settings.sse_heartbeat_s
        denylist = self.request.app[DENYLIST]
        while True:
            remaining = self.identity.exp - time.time()
            if remaining <= 0 or denylist.is_revoked(self.identity):
                reason = "token_expired" if remaining <= 0 else "revoked"
                CLOSED.labels(reason).inc()
                return await self.end(reason)
            event = await self.sub.next(min(heartbeat, remaining))
            if event is None:
                transport = self.request.transport
                if transport is None or transport.is_closing():
                    return None
                await self.send(b": heartbeat\n\n")
            elif event.id in replayed:
                replayed.discard(event.id)  # the replay already sent it
            else:
                await self.send(event.frame)


async def stream(request: web.Request, route: Route) -> web.StreamResponse:
    """The handler of GET /api/v1/notifications/stream."""
    identity = identity_of(request)
    parse_query(route, request.query)
    after = last_event_id(request)
    hub: Hub | None = request.app.get(HUB)
    settings = request.app[SETTINGS]
    if hub is None or not (settings.listen_enabled and settings.database_url):
        raise ApiError(
            503, "notifications_unavailable", "Live notifications need NIMBUS_DATABASE_URL"
        )
    if len(hub) >= hub.max_subscribers:
        raise ApiError(503, "too_many_streams", "This process has no room for another stream")
    if not hub.ready.is_set():
        # Subscribing before LISTEN is up would only be resynced; give it a moment.
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await hub.ready.wait()
        except TimeoutError:
            pass
    epoch = hub.membership_epoch
    orgs = await organizations(request, identity)
    slots = request.app[SLOTS]
    subject = subject_of(
        identity,
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        request.app[TRUSTED],
    )
    try:
        slot = await slots.acquire(subject, orgs)
    except CapReached as exc:
        cap = settings.sse_max_per_user if exc.kind == "user" else settings.sse_max_per_organization
        refused = ApiError(
            429,
            "too_many_streams",
            f"Your {exc.kind} already holds {cap} open notification streams",
            {"limit": cap, "per": exc.kind},
        )
        refused.headers["Retry-After"] = str(max(1, round(settings.sse_retry_ms / 1000)))
        raise refused from None
    sub = hub.subscribe(orgs, user=identity.subject, session=revocation_id(identity))
    # The client leaving ends the stream at once (its slot is free for the next one), not at
    # the next heartbeat that fails to write.
    request[ON_DISCONNECT] = [lambda: sub.close("client_gone")]
    if hub.membership_epoch != epoch:
        # A membership changed while the organizations were read: they may be stale already.
        sub.close("membership_changed")
    current = Stream(request, identity, sub)
    try:
        await current.response.prepare(request)  # the RateLimit headers go with it
        await current.send(b"retry: %d\n: connected\n\n" % settings.sse_retry_ms)
        replayed: set[int] = set()
        if after is not None:
            replayed, more = await current.replay(after)
            if more:
                CLOSED.labels("replay_continues").inc()
                await current.end("replay_continues")
                return current.response
        await current.live(replayed)
    except Closed as exc:
        if exc.reason != "slow":
            await _quietly(current.end(exc.reason))
    except (ConnectionError, TimeoutError):
        pass  # the client went away or stopped reading
    except ProxyError as exc:  # PostgREST failed during the replay: the client retries
        log.warning("notifications: replay failed (%s)", exc.code)
    finally:
        hub.unsubscribe(sub)
        await slots.release(slot)
    return current.response


async def _quietly(write: Awaitable[object]) -> None:
    try:
        await write
    except (ConnectionError, TimeoutError):
        pass
