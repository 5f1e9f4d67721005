"""The process's joined channels and the one decision of who receives a change.

A change reaches a channel when one of its postgres_changes bindings matches and its user could
SELECT the row now: for organization-scoped tables, membership of the row's organization with the
table's read role, as `roles` says (kept current by the change feed, in commit order with the
changes: proxy/realtime/source.py). A channel whose token has expired or been revoked receives
nothing more and is closed. Each distinct frame is encoded once per change."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter, Gauge

from proxy.realtime import protocol
from proxy.realtime.bindings import Binding
from proxy.realtime.change import Change
from proxy.realtime.outbox import Outbox
from proxy.realtime.routes import Routes

log = logging.getLogger(__name__)
RECONNECT_WINDOW_S = 60.0
CHANNELS = Gauge(
    "nimbus_realtime_channels", "Joined Realtime channels.", multiprocess_mode="livesum"
)
DELIVERED = Counter(
    "nimbus_realtime_messages_total", "postgres_changes messages queued to sockets."
)


@dataclass(eq=False, slots=True)
class Channel:
    """One joined topic of one socket, as the user its latest token names."""

    outbox: Outbox
    vsn: str
    topic: str
    join_ref: str | None
    bindings: tuple[Binding, ...]
    user: str | None
    session: str | None  # what a logout revokes (session id, else jti)
    exp: float
    claims: str = "{}"  # the token's claims as JSON: how the database is asked as this user
    broadcast_self: bool = False

    def send(self, event: str, payload: dict[str, Any], ref: str | None = None) -> None:
        """Queue one message on this channel's topic."""
        self.outbox.push(
            protocol.encode(self.vsn, self.join_ref, ref, self.topic, event, orjson.dumps(payload))
        )


class Hub:
    """Channels by table; users' roles by organization; the per-change fan-out."""

    def __init__(self) -> None:
        self.channels: set[Channel] = set()
        self.routes = Routes()
        self.roles: dict[str, dict[str, int]] = {}  # user -> organization -> role rank
        self.users: dict[str, int] = {}  # user -> channels open
        self.membership_epoch = 0  # moves with each membership change the feed sees
        self.started = time.monotonic()
        self.recent: dict[tuple[str, str], float] = {}  # (user, topic) -> when its socket dropped

    def add(self, channel: Channel, roles: dict[str, int] | None) -> None:
        """Start delivering to channel (roles: its user's, when not known here yet)."""
        self.channels.add(channel)
        self.routes.add(channel)
        if channel.user is not None:
            self.users[channel.user] = self.users.get(channel.user, 0) + 1
            if roles is not None:
                self.roles[channel.user] = roles
        CHANNELS.inc()

    def remove(self, channel: Channel) -> None:
        """Stop delivering to channel (idempotent)."""
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        self.routes.remove(channel)
        if channel.user is not None:
            left = self.users.get(channel.user, 1) - 1
            if left > 0:
                self.users[channel.user] = left
            else:
                self.users.pop(channel.user, None)
                self.roles.pop(channel.user, None)
        CHANNELS.dec()

    def dropped(self, channel: Channel) -> None:
        """channel's socket ended without leaving it: its user may come back for it."""
        now = time.monotonic()
        if len(self.recent) > 100_000:
            self.recent = {k: t for k, t in self.recent.items() if now - t < RECONNECT_WINDOW_S}
        if channel.user is not None:
            self.recent[(channel.user, channel.topic)] = now

    def may_have_missed(self, user: str | None, topic: str) -> bool:
        """Whether a join may be a client coming back: this process started less than
        RECONNECT_WINDOW_S ago (it may replace one that stopped), or the user's socket on this
        topic dropped here that recently. Nothing is replayed; the client is told."""
        now = time.monotonic()
        if now - self.started < RECONNECT_WINDOW_S:
            return True
        dropped = self.recent.pop((user or "", topic), None)
        return dropped is not None and now - dropped < RECONNECT_WINDOW_S

    def allowed(
        self, channel: Channel, change: Change, now: float, visible: set[str] | None
    ) -> bool:
        """Whether channel's user may see the changed row now (visible: the claims the database
        showed the row to, for tables it decides)."""
        if channel.exp <= now or channel.user is None:
            return False
        if change.table.organization_column is None:
            return visible is not None and channel.claims in visible
        organization = change.organization()
        if organization is None:
            return False
        return self.roles.get(channel.user, {}).get(organization, 0) >= change.table.read_rank

    def wanting(self, change: Change) -> list[tuple[Channel, list[int]]]:
        """The channels (with their matching binding ids) whose bindings want change."""
        # Filters see the whole row, the old one for a delete (Supabase matches a delete only on
        # what its replica identity keeps; the subscriber may read the row either way).
        record = change.new if change.kind != "DELETE" else change.old
        wanted = []
        for channel in self.routes.candidates(change.table.name, record):
            ids = [
                b.id
                for b in channel.bindings
                if b.table in (None, change.table.name) and b.matches(change.kind, record)
            ]
            if ids:
                wanted.append((channel, ids))
        return wanted

    def dispatch(
        self,
        change: Change,
        wanted: list[tuple[Channel, list[int]]],
        visible: set[str] | None = None,
    ) -> int:
        """Queue change on every wanting channel that may see it; how many got it."""
        now = time.time()
        data = None
        frames: dict[tuple[Any, ...], str] = {}
        sent = 0
        for channel, ids in wanted:
            if not self.allowed(channel, change, now, visible):
                continue
            key = (channel.vsn, channel.topic, *ids)
            frame = frames.get(key)
            if frame is None:
                if data is None:
                    data = change.data()
                payload = b'{"ids":%s,"data":%s}' % (orjson.dumps(ids), data)
                frame = frames[key] = protocol.encode(
                    channel.vsn, None, None, channel.topic, "postgres_changes", payload
                )
            channel.outbox.push(frame)
            sent += 1
        DELIVERED.inc(sent)
        return sent

    def system(self, channel: Channel, status: str, message: str, extension: str) -> None:
        """A `system` message to channel (subscribed, may have missed events, token errors)."""
        channel.send(
            "system",
            {
                "channel": channel.topic.removeprefix("realtime:"),
                "extension": extension,
                "message": message,
                "status": status,
            },
        )

    def close(self, channel: Channel, message: str) -> None:
        """Tell channel why it ends (system error), close it (phx_close), stop delivering."""
        self.system(channel, "error", message, "system")
        channel.send("phx_close", {})
        self.remove(channel)

    def end_session(self, session: str) -> None:
        """A session (or token id) was revoked: close its channels now (the denylist calls)."""
        for channel in [c for c in self.channels if c.session == session]:
            self.close(channel, "Token has been revoked")

    def expire(self, now: float) -> None:
        """Close the channels whose token has expired."""
        for channel in [c for c in self.channels if c.exp <= now]:
            self.close(channel, "Token has expired")

    def missed(self, why: str) -> None:
        """Every channel with postgres_changes bindings may have missed events: say so (status
        ok: the official clients treat a system error as a failed channel and rejoin)."""
        for channel in tuple(self.channels):
            if channel.bindings:
                self.system(channel, "ok", why, "postgres_changes")
