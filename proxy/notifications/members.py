"""Membership changes end the streams they make wrong, within the LISTEN round trip.

Every statement on `public.memberships` NOTIFYs `nimbus_changes` (`{"table": "memberships",
"op": ...}`, from the statement trigger the cache listens to as well). Anything but an insert
may have removed someone, so the watch reads the current memberships of the users with an open
stream on this process — one indexed query, however many streams, coalescing changes that
arrive meanwhile — and the hub ends each stream that includes an organization its user has
left. The stream's client reconnects and gets a stream of the organizations it still has. The
query only ever narrows: what a stream shows is still decided by RLS, as the user, on connect."""

from __future__ import annotations

import asyncio
import logging

import orjson
import psycopg

from proxy.notifications.hub import Hub
from proxy.ops.ids import is_uuid

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"
QUERY = (
    "select user_id::text, organization_id::text from public.memberships"
    " where user_id = any(%s::uuid[])"
)


def may_remove_members(payload: str) -> bool:
    """Whether a nimbus_changes payload is a statement on memberships other than an insert
    (every write's statements arrive on that channel: most are read no further than this)."""
    if "memberships" not in payload:
        return False
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.strip() == "memberships"
    if not isinstance(data, dict):
        return False
    return data.get("table") == "memberships" and data.get("op") != "insert"


class MembershipWatch:
    """on_change(payload) from the LISTEN connection; run() re-checks the streams' users."""

    def __init__(self, database_url: str, hub: Hub) -> None:
        self.hub = hub
        self.conninfo = psycopg.conninfo.make_conninfo(
            database_url, application_name="nimbus-members", connect_timeout=5
        )
        self._dirty = asyncio.Event()

    def on_change(self, payload: str) -> None:
        """A nimbus_changes notification (called in the listener's loop turn)."""
        if may_remove_members(payload):
            self.hub.membership_epoch += 1
            self._dirty.set()

    async def memberships(self, users: set[str]) -> dict[str, set[str]]:
        """user id -> organization ids, as the table says now."""
        ids = sorted(u for u in users if is_uuid(u))
        found: dict[str, set[str]] = {}
        if not ids:
            return found
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            for user, org in await (await conn.execute(QUERY, (ids,))).fetchall():
                found.setdefault(user, set()).add(org)
        return found

    async def run(self) -> None:
        """Forever: after each (coalesced) change, end the streams it made wrong."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            users = self.hub.users()
            if not users:
                continue
            try:
                current = await self.memberships(users)
            except (psycopg.Error, OSError) as exc:
                # Unknown who lost what: end every stream (clients reconnect as themselves).
                log.warning("notifications: membership re-check failed (%s)", type(exc).__name__)
                self.hub.close_all("resync")
                continue
            ended = self.hub.end_lost(users, current)
            if ended:
                log.info("notifications: %d stream(s) ended by a membership change", ended)
