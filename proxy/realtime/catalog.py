"""The tables published to Realtime (those with the `realtime_change` trigger) and what the proxy
needs of each: its columns as the clients' `columns` field lists them, its primary key (what an
`old_record` holds unless the replica identity is full), and who may read its rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

ROLES = ("viewer", "staff", "manager", "admin", "owner")
RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
# Tables whose read policy (sql/policies) is exactly "a member of the row's organization with at
# least this role": decided here from memberships. Any other published table is asked of the
# database, as the subscriber (proxy/realtime/database.py, visible).
MEMBER_READ = {
    "audit_log": "admin",
    **dict.fromkeys(
        (
            "categories",
            "locations",
            "lots",
            "memberships",
            "notifications",
            "order_items",
            "orders",
            "organizations",
            "products",
            "reorder_rules",
            "settings",
            "stock_count_lines",
            "stock_counts",
            "stock_levels",
            "stock_movements",
            "supplier_products",
            "suppliers",
        ),
        "viewer",
    ),
}
QUERY = """
select
  c.relname::text,
  c.relreplident = 'f',
  coalesce((
    select json_agg(json_build_object('name', a.attname, 'type', t.typname) order by a.attnum)
    from pg_catalog.pg_attribute as a
    join pg_catalog.pg_type as t on t.oid = a.atttypid
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  ), '[]')::text,
  coalesce((
    select array_agg(a.attname::text order by k.n)
    from pg_catalog.pg_index as i
    cross join lateral unnest(i.indkey) with ordinality as k (attnum, n)
    join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum = k.attnum
    where i.indrelid = c.oid and i.indisprimary
  ), '{}')
from pg_catalog.pg_class as c
join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
where n.nspname = 'public' and exists (
  select from pg_catalog.pg_trigger as g where g.tgrelid = c.oid and g.tgname = 'realtime_change'
)
"""


@dataclass(frozen=True, slots=True)
class Table:
    """One published table."""

    name: str
    columns: tuple[dict[str, str], ...]
    primary_key: tuple[str, ...]
    full_identity: bool
    organization_column: str | None  # the column RLS scopes rows by; None: ask the database
    read_rank: int

    def old_record(self, old: dict[str, Any] | None) -> dict[str, Any]:
        """What a client is given of the old row: all of it with replica identity full, else
        its primary key."""
        if not old:
            return {}
        if self.full_identity:
            return old
        return {key: old.get(key) for key in self.primary_key}


def table_of(name: str, full: bool, columns_json: str, primary_key: list[str]) -> Table:
    """A Table from one row of QUERY."""
    columns = tuple(orjson.loads(columns_json))
    names = {c["name"] for c in columns}
    scope = None
    if name in MEMBER_READ:
        scope = "id" if name == "organizations" else "organization_id"
        assert scope in names, f"{name} has no {scope} column"
    return Table(
        name,
        columns,
        tuple(primary_key),
        full,
        scope,
        RANK[MEMBER_READ.get(name, "viewer")],
    )


class Catalog:
    """The published tables by name, reloaded when the change feed (re)connects."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self._columns: dict[str, set[str]] = {}

    def load(self, rows: Iterable[Any]) -> None:
        """Replace the tables with those of QUERY's rows."""
        self.tables = {row[0]: table_of(*row) for row in rows}
        self._columns = {name: {c["name"] for c in t.columns} for name, t in self.tables.items()}

    def columns(self) -> dict[str, set[str]]:
        """Each published table's column names (what bindings may name and filter on), worked
        out once per load rather than once per join."""
        return self._columns
