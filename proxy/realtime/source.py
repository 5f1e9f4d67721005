"""The change feed: LISTEN nimbus_realtime (row changes, from private.realtime_change) and
nimbus_changes (membership statements) on the process's one LISTEN connection, so both arrive
in commit order, and
one task that applies them in that order: a membership change re-reads the roles of the users
with open channels before any later change is delivered, so a removed member gets nothing
committed after the removal. Oversized changes are fetched from private.realtime_spill. Every
reconnect of the LISTEN connection tells open channels that events may have been missed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import orjson
import psycopg
from aiohttp import web

from proxy.notifications.members import CHANNEL as MEMBERS_CHANNEL
from proxy.ops.ids import is_uuid
from proxy.ops.metrics import DEPENDENCY_UP
from proxy.ops.pglisten import Listen
from proxy.realtime.catalog import QUERY, Catalog
from proxy.realtime.change import Change
from proxy.realtime.database import PRUNE, SPILL, Database
from proxy.realtime.hub import Hub

log = logging.getLogger(__name__)
CHANNEL = "nimbus_realtime"
GAP = "The change feed reconnected: events may have been missed"


class Feed:
    """The hub, the catalog, and the ordered queue between LISTEN and delivery."""

    def __init__(self, database_url: str, spill_keep_s: float) -> None:
        self.database_url = database_url
        self.db = Database(database_url)
        self.hub = Hub()
        self.catalog = Catalog()
        self.spill_keep_s = spill_keep_s
        self.ready = asyncio.Event()
        self.sockets: set[web.WebSocketResponse] = set()
        self._items: deque[tuple[str, str]] = deque()
        self._wake = asyncio.Event()
        self._connected_before = False

    def _queue(self, kind: str, payload: str = "") -> None:
        self._items.append((kind, payload))
        self._wake.set()

    def on_change(self, payload: str) -> None:
        """A nimbus_realtime notification; dropped while no channel is open (nobody could want
        it: a channel gets the changes committed after it joined), so that a process nobody
        subscribes to spends nothing on every write's change."""
        if self.hub.channels:
            self._queue("change", payload)

    def on_members(self, payload: str) -> None:
        """A nimbus_changes notification: only membership statements matter here (every
        write's statements arrive on that channel; most are read no further than this)."""
        if "memberships" not in payload:
            return
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            data = {"table": payload.strip()}
        if isinstance(data, dict) and data.get("table") == "memberships":
            self.hub.membership_epoch += 1
            self._queue("members")

    async def on_state(self, up: bool) -> None:
        """LISTEN (re)established or lost."""
        DEPENDENCY_UP.labels("realtime_listener").set(int(up))
        if not up:
            self.ready.clear()
            return
        try:
            await self.load_catalog()
        except (psycopg.Error, OSError) as exc:
            log.warning("realtime: catalog not loaded (%s)", type(exc).__name__)
        if self._connected_before:
            self._queue("gap")
            self._queue("members")  # memberships may have changed meanwhile too
        self._connected_before = True
        self.ready.set()

    async def load_catalog(self) -> None:
        """Read the published tables."""
        self.catalog.load(await self.db.fetch(QUERY))

    async def roles_of(self, user: str | None) -> dict[str, int] | None:
        """The user's roles (organization -> rank), from the hub when it has them; read with an
        epoch check so a membership change seen meanwhile is not missed."""
        if user is None or not is_uuid(user):
            return {}
        known = self.hub.roles.get(user)
        if known is not None:
            return known
        while True:
            epoch = self.hub.membership_epoch
            roles = (await self.db.roles([user]))[user]
            if epoch == self.hub.membership_epoch:
                return roles

    def attach(self, listen: Listen) -> None:
        """Hear row changes and membership statements on the process's LISTEN connection
        (proxy/ops/pglisten.py: one connection, so both arrive in commit order)."""
        listen.add({CHANNEL: self.on_change, MEMBERS_CHANNEL: self.on_members}, self.on_state)

    async def run(self) -> None:
        """Apply queued items in order, forever."""
        items = self._items
        while True:
            await self._wake.wait()
            self._wake.clear()
            while items:
                kind, payload = items.popleft()
                if kind == "members":
                    while items and items[0][0] == "members":
                        items.popleft()  # one re-read covers them all
                    await self.refresh_roles()
                elif kind == "change":
                    await self.apply(payload)
                else:
                    self.hub.missed(GAP)

    async def refresh_roles(self) -> None:
        """Re-read the roles of every user with an open channel."""
        users = sorted(u for u in self.hub.users if is_uuid(u))
        if not users:
            return
        try:
            current = await self.db.roles(users)
        except (psycopg.Error, OSError) as exc:
            # Unknown who may see what: nobody sees anything until the roles are read again.
            log.warning("realtime: roles not re-read (%s); retrying", type(exc).__name__)
            for user in users:
                self.hub.roles[user] = {}
            await asyncio.sleep(0.2)
            self._items.appendleft(("members", ""))
            return
        for user, roles in current.items():
            if user in self.hub.users:
                self.hub.roles[user] = roles

    async def apply(self, payload: str) -> None:
        """Deliver one change notification."""
        try:
            data = orjson.loads(payload)
            if "spill" in data:
                rows = await self.db.fetch(SPILL, (data["spill"],))
                if not rows:
                    log.warning("realtime: an oversized change was gone before it was read")
                    self.hub.missed("An oversized change could not be read: it was missed")
                    return
                data = orjson.loads(rows[0][0])
            table = self.catalog.tables.get(data["table"])
            if table is None:
                await self.load_catalog()  # a table published since the last load
                table = self.catalog.tables.get(data["table"])
                if table is None:
                    return
            change = Change(table, data["type"], data["new"], data["old"], data["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("realtime: ignored a malformed change (%s)", type(exc).__name__)
            return
        except (psycopg.Error, OSError) as exc:
            log.warning("realtime: a change could not be read (%s)", type(exc).__name__)
            self.hub.missed("A change could not be read: it was missed")
            return
        wanted = self.hub.wanting(change)
        if not wanted:
            return
        visible = None
        if table.organization_column is None and change.kind != "DELETE":
            # Not decided by memberships: ask the database, as each distinct subscriber, whether
            # it can SELECT the row now (a deleted row cannot be asked about: not delivered).
            claims = {channel.claims for channel, _ in wanted if channel.user is not None}
            try:
                visible = await self.db.visible(claims, table, change.new or {})
            except (psycopg.Error, OSError) as exc:
                log.warning("realtime: visibility not checked (%s)", type(exc).__name__)
                visible = set()
        self.hub.dispatch(change, wanted, visible)

    async def prune_forever(self) -> None:
        """Delete kept oversized changes older than spill_keep_s, every minute."""
        while True:
            await asyncio.sleep(60)
            try:
                await self.db.fetch(PRUNE, (self.spill_keep_s,))
            except (psycopg.Error, OSError) as exc:
                log.debug("realtime: spill not pruned (%s)", type(exc).__name__)

    async def expire_forever(self) -> None:
        """Close channels whose token expired, four times a second (delivery already stops at
        the expiry itself: proxy/realtime/hub.py)."""
        while True:
            await asyncio.sleep(0.25)
            self.hub.expire(time.time())
