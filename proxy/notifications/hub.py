"""The in-process fan-out of notification events to the streams of this process.

`publish` never waits: each subscriber has a bounded queue, and a subscriber whose queue is full
(a client that reads slower than events arrive) is closed rather than allowed to grow memory.
The client reconnects with Last-Event-ID and replays what it missed from the table."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

SUBSCRIBERS = Gauge(
    "nimbus_sse_subscribers",
    "Open /api/v1/notifications/stream connections.",
    multiprocess_mode="livesum",
)
EVENTS = Counter("nimbus_sse_events_total", "Events received on LISTEN nimbus_events.")
CLOSED = Counter(
    "nimbus_sse_closed_total",
    "Streams ended by the proxy, by reason (slow, resync, shutdown, token_expired, revoked,"
    " membership_changed, client_gone).",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class Event:
    """One notification: its id, its organization, and its SSE frame (built once, sent to all)."""

    id: int
    organization_id: str
    frame: bytes


def frame_of(row: Mapping[str, object]) -> Event:
    """The Event of a notification row or NOTIFY payload {id, organization_id, kind, payload}."""
    event_id, org = row["id"], row["organization_id"]
    if not isinstance(event_id, int) or isinstance(event_id, bool) or not isinstance(org, str):
        raise ValueError("not a notification")
    data = orjson.dumps(
        {"id": event_id, "organization_id": org, "kind": row["kind"], "payload": row["payload"]}
    )
    return Event(event_id, org, b"id: %d\ndata: %s\n\n" % (event_id, data))


class Closed(Exception):
    """The subscription was ended by the hub; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription:
    """One stream's view of the hub: events of its organizations, at most `limit` queued; whose
    it is (the user id, the session a logout revokes) so the hub can end it when that changes."""

    __slots__ = ("_items", "_wake", "limit", "organizations", "reason", "session", "user")

    def __init__(
        self,
        organizations: frozenset[str],
        limit: int,
        user: str | None = None,
        session: str | None = None,
    ) -> None:
        self.organizations = organizations
        self.limit = limit
        self.user = user
        self.session = session
        self.reason: str | None = None
        self._items: deque[Event] = deque()
        self._wake = asyncio.Event()

    def offer(self, event: Event) -> bool:
        """Queue event; False (and the subscription closed) when the queue is full."""
        if self.reason is not None:
            return False
        if len(self._items) >= self.limit:
            self.close("slow")
            return False
        self._items.append(event)
        self._wake.set()
        return True

    def close(self, reason: str) -> None:
        """End the subscription; the stream sees Closed(reason) on its next wait."""
        if self.reason is None:
            self.reason = reason
            self._items.clear()
            CLOSED.labels(reason).inc()
        self._wake.set()

    async def next(self, within_s: float) -> Event | None:
        """The next event, None after within_s seconds without one; raises Closed once closed."""
        if self.reason is None and not self._items:
            self._wake.clear()
            try:
                async with asyncio.timeout(within_s):
                    await self._wake.wait()
            except TimeoutError:
                return None
        if self.reason is not None:
            raise Closed(self.reason)
        return self._items.popleft() if self._items else None


class Hub:
    """The process's subscribers, and whether the LISTEN connection is currently up."""

    def __init__(self, queue_size: int, max_subscribers: int) -> None:
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.ready = asyncio.Event()  # set while LISTEN is established
        # Moves with every membership change seen (a stream that subscribed across one
        # re-reads its organizations: proxy/notifications/stream.py).
        self.membership_epoch = 0
        self._subscribers: set[Subscription] = set()
        self._by_session: dict[str, set[Subscription]] = {}

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, organizations: frozenset[str], *, user: str | None = None, session: str | None = None
    ) -> Subscription:
        """A new subscription; publish() reaches it from now on."""
        sub = Subscription(organizations, self.queue_size, user, session)
        self._subscribers.add(sub)
        if session is not None:
            self._by_session.setdefault(session, set()).add(sub)
        SUBSCRIBERS.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget sub (idempotent)."""
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            if sub.session is not None:
                same = self._by_session.get(sub.session)
                if same is not None:
                    same.discard(sub)
                    if not same:
                        del self._by_session[sub.session]
            SUBSCRIBERS.dec()

    def end_session(self, session: str) -> None:
        """A session (or token id) was revoked: end its streams now (the denylist calls this)."""
        for sub in tuple(self._by_session.get(session, ())):
            sub.close("revoked")
            self.unsubscribe(sub)

    def users(self) -> set[str]:
        """The user ids with an open stream here."""
        return {sub.user for sub in self._subscribers if sub.user is not None}

    def end_lost(self, users: set[str], memberships: dict[str, set[str]]) -> int:
        """End the streams of `users` that include an organization the user is no longer a
        member of (memberships: user id -> organization ids now); returns how many ended."""
        ended = 0
        for sub in tuple(self._subscribers):
            if sub.user in users and not sub.organizations <= memberships.get(sub.user, set()):
                sub.close("membership_changed")
                self.unsubscribe(sub)
                ended += 1
        return ended

    def publish(self, event: Event) -> None:
        """Hand event to every subscriber of its organization; drop the ones that lag."""
        EVENTS.inc()
        for sub in tuple(self._subscribers):
            if event.organization_id in sub.organizations and not sub.offer(event):
                self.unsubscribe(sub)
                log.info("notifications: dropped a slow subscriber (queue of %d full)", sub.limit)

    def close_all(self, reason: str) -> None:
        """End every subscription (shutdown, or a LISTEN reconnect after which events may have
        been missed: clients come back with Last-Event-ID and replay)."""
        for sub in tuple(self._subscribers):
            sub.close(reason)
            self.unsubscribe(sub)

    def listening(self, up: bool) -> None:
        """LISTEN became established (up) or was lost."""
        if up:
            # Whoever subscribed before this connection may have missed events: resync them.
            self.close_all("resync")
            self.ready.set()
        else:
            self.ready.clear()
