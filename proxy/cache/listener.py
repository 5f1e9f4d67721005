"""LISTEN nimbus_changes: writes made anywhere but through this proxy (dashboard, SQL, cron)
reach the cache as generation bumps. On the process's LISTEN connection (proxy/ops/pglisten.py),
reconnecting with backoff; a (re)connect bumps the epoch, since anything may have changed while
nobody was listening."""

from __future__ import annotations

import asyncio
import logging

import orjson

from proxy.cache.dependencies import Place, changed_names, joined_name
from proxy.cache.generations import Generations
from proxy.ops.pglisten import Listen

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"


def names_of(payload: str) -> set[str]:
    """The generation names a notification moves (heard())."""
    return heard(payload)[0]


def heard(payload: str) -> tuple[set[str], str | None, str | None]:
    """The generation names a notification moves: {"table": ..., "products": [...],
    "places": [[product, location], ...], "organizations": [...], "users": [...]} (each
    optional: products and places from private.notify_stock_change, organizations from tables
    with organization_id, users from memberships), or a bare table name. A list that is not
    all strings counts as not given (the whole table). A memberships insert or update ("op")
    moves its users' join names too (dependencies.joined_name). With them, the token of the
    proxy's write that ran the statement ("write", proxy/cache/ownwrites.py) and its
    transaction ("tx"), if any."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        table = payload.strip()
        return (changed_names(table, None) if table else set()), None, None
    if not isinstance(data, dict) or not isinstance(data.get("table"), str):
        return set(), None, None
    names = changed_names(
        data["table"],
        _strings(data.get("products")),
        _strings(data.get("organizations")),
        _places(data.get("places")),
        _strings(data.get("users")),
    )
    users = _strings(data.get("users"))
    if data["table"] == "memberships" and data.get("op") != "delete" and users is not None:
        names |= {joined_name(u) for u in users}  # an insert or update may add a membership
    token, tx = data.get("write"), data.get("tx")
    if not (isinstance(token, str) and isinstance(tx, str)):
        return names, None, None
    return names, token, tx


def _strings(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.lower() for v in value]
    return None


def _places(value: object) -> list[Place] | None:
    """[[product id, location id], ...]; anything else counts as not given."""
    if not isinstance(value, list):
        return None
    places = []
    for pair in value:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        ):
            return None
        places.append((pair[0].lower(), pair[1].lower()))
    return places


class Coalescer:
    """Bumps for notifications, one Redis round at a time: the names of every notification that
    arrives while a bump is in flight go out together in the next one. A statement's commit
    sends a notification per table it wrote (a stock adjustment: stock levels, movements, lots,
    the audit log), and under a write load they arrive faster than one bump per notification
    can be recorded and announced. Each arrival is distrusted here at once (unsettled until its
    bump has Redis's values)."""

    def __init__(self, generations: Generations) -> None:
        self.generations = generations
        self.pending: set[str] = set()
        self.flushing: asyncio.Task[None] | None = None

    def add(self, names: set[str]) -> None:
        """Distrust names here now; record and announce them with the next bump."""
        fresh = names - self.pending  # each pending name is unsettled once, settled once
        if not fresh:
            return
        self.generations.unsettle(fresh)
        self.pending |= fresh
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending:
            names, self.pending = self.pending, set()
            try:
                # Nobody waits on an external write's response here: no need for acks.
                await self.generations.bump(names, wait=False)
            finally:
                self.generations.settle(names)

    async def close(self) -> None:
        """Stop (at shutdown): what was not announced is only bumps peers hear themselves."""
        if self.flushing is not None:
            self.flushing.cancel()
            await asyncio.gather(self.flushing, return_exceptions=True)
        self.generations.settle(self.pending)
        self.pending = set()


class ChangeListener:
    """nimbus_changes on the process's LISTEN connection: every notification bumps what it
    names, but what a write of this process's own bumps (proxy/cache/ownwrites.py); every
    (re)connect bumps the epoch (Generations.set_listener)."""

    def __init__(self, generations: Generations) -> None:
        self.coalescer = Coalescer(generations)
        self.own = generations.own_writes
        self.own.release = self.coalescer.add

    def on_notify(self, payload: str) -> None:
        names, token, tx = heard(payload)
        if rest := self.own.heard(token, tx, names):
            self.coalescer.add(rest)

    async def close(self) -> None:
        """At shutdown, once the connection has stopped."""
        self.own.release = None
        await self.coalescer.close()


def attach(listen: Listen, generations: Generations) -> ChangeListener:
    """Add the cache's listener to the process's LISTEN connection (before it starts)."""
    listener = ChangeListener(generations)
    listen.add({CHANNEL: listener.on_notify}, generations.set_listener)
    return listener
