"""The Realtime feed's own database connection for short queries (members' roles, oversized
changes, pruning): opened on first use, reopened after an error, never held by a client."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import sql

from proxy.realtime.catalog import RANK, Table

ROLES = (
    "select user_id::text, organization_id::text, role from public.memberships"
    " where user_id = any(%s::uuid[])"
)
SPILL = "select message::text from private.realtime_spill where id = %s"
SET_CLAIMS = "select set_config('request.jwt.claims', %s, true)"
PRUNE = "delete from private.realtime_spill where created_at < now() - make_interval(secs => %s)"


class Database:
    """fetch(query, params) on one autocommit connection, serialised."""

    def __init__(self, database_url: str) -> None:
        self.conninfo = psycopg.conninfo.make_conninfo(
            database_url, application_name="nimbus-realtime", connect_timeout=5
        )
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def fetch(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """The rows of query; raises psycopg.Error/OSError (and forgets the connection)."""
        async with self._lock:
            conn = await self._connect()
            try:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall() if cursor.description else []
            except (psycopg.Error, OSError):
                await conn.close()
                self._conn = None
                raise

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        return self._conn

    async def roles(self, users: list[str]) -> dict[str, dict[str, int]]:
        """user -> organization -> role rank, as the memberships table says now."""
        found: dict[str, dict[str, int]] = {user: {} for user in users}
        for user, organization, role in await self.fetch(ROLES, (users,)):
            found[user][organization] = RANK.get(role, 0)
        return found

    async def visible(self, claims: set[str], table: Table, row: dict[str, Any]) -> set[str]:
        """Of claims (JSON, one per subscriber identity), those under which the row can be read
        now: one transaction as role authenticated, one query per identity (RLS decides)."""
        keys = [column for column in table.primary_key if row.get(column) is not None]
        if not claims or not keys or len(keys) != len(table.primary_key):
            return set()
        where = sql.SQL(" and ").join(
            sql.SQL("{}::text = %s").format(sql.Identifier(column)) for column in keys
        )
        exists = sql.SQL("select exists (select from public.{} where {})").format(
            sql.Identifier(table.name), where
        )
        values = [str(row[column]) for column in keys]
        seen: set[str] = set()
        async with self._lock:
            conn = await self._connect()
            try:
                async with conn.transaction():
                    await conn.execute("set local role authenticated")
                    for each in sorted(claims):
                        await conn.execute(SET_CLAIMS, (each,))
                        found = await (await conn.execute(exists, values)).fetchone()
                        if found and found[0]:
                            seen.add(each)
            except (psycopg.Error, OSError):
                await conn.close()
                self._conn = None
                raise
        return seen

    async def close(self) -> None:
        """Close the connection (shutdown)."""
        if self._conn is not None:
            await self._conn.close()
