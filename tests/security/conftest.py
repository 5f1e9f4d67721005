"""Fixtures for the security battery: the two-organization world, a proxy process of the
battery's own (its log is read by the tests) behind a counting relay, and tenant fingerprints."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from psycopg import sql

from proxy.gate.tokens import mint
from tests.support.domain import World, build_world
from tests.support.process import Proc, start_proxy
from tests.support.relay import CountingRelay

# Tables whose rows belong to one organization (the column that says which).
TENANT_COLUMN = "organization_id"


@dataclass
class Stack:
    """The battery's proxy process, its base URL and the relay that counts upstream requests."""

    proc: Proc
    url: str
    relay: CountingRelay
    secret: str


@pytest.fixture(scope="session")
def world(database_url: str) -> World:
    """Organizations a and b with a user per role, locations, products, stock and an order."""
    return build_world(database_url)


@pytest.fixture(scope="session")
def stack(postgrest, database_url: str, jwt_secret: str, tmp_path_factory) -> Iterator[Stack]:
    """A `nimbus serve` of the battery's own (default 1 MiB body limit), through its own relay."""
    relay = CountingRelay("127.0.0.1", int(postgrest.url.rsplit(":", 1)[1])).start()
    proc, url = start_proxy(
        tmp_path_factory.mktemp("security-proxy"),
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
        NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_UPSTREAM_TIMEOUT_S="10",
    )
    yield Stack(proc, url, relay, jwt_secret)
    proc.stop()
    relay.stop()


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[httpx.Client]:
    """One keep-alive httpx client on the battery's proxy."""
    with httpx.Client(base_url=stack.url, timeout=20) as c:
        yield c


@pytest.fixture(scope="session")
def bearer(jwt_secret: str):
    """bearer(uid) -> Authorization headers with a fresh token for uid."""

    def make(uid: str, **claims) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint(jwt_secret, sub=uid, **claims)}

    return make


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    """Base tables of schema public that carry organization_id."""
    rows = conn.execute(
        "select c.table_name from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema = 'public' and c.column_name = %s and t.table_type = 'BASE TABLE'"
        " order by 1",
        (TENANT_COLUMN,),
    ).fetchall()
    return [r[0] for r in rows]


def fingerprint(database_url: str, org_id: str) -> dict[str, tuple[int, str]]:
    """(row count, md5 of every row) per tenant table for one organization, plus the org row."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in tenant_tables(conn):
            q = sql.SQL(
                "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '')"
                " from public.{} t where organization_id = %s"
            ).format(sql.Identifier(table))
            out[table] = tuple(conn.execute(q, (org_id,)).fetchone())
        out["organizations"] = tuple(
            conn.execute(
                "select count(*), coalesce(md5(string_agg(o::text, '|')), '')"
                " from public.organizations o where id = %s",
                (org_id,),
            ).fetchone()
        )
    return out


def markers(database_url: str, org_id: str) -> set[str]:
    """Every uuid id (and the slug) of one organization: none may appear in another's answers."""
    found = {org_id}
    with psycopg.connect(database_url, autocommit=True) as conn:
        found.add(
            conn.execute(
                "select slug from public.organizations where id = %s", (org_id,)
            ).fetchone()[0]
        )
        for table in tenant_tables(conn):
            has_id = conn.execute(
                "select 1 from information_schema.columns where table_schema = 'public'"
                " and table_name = %s and column_name = 'id'",
                (table,),
            ).fetchone()
            if has_id:
                q = sql.SQL("select id::text from public.{} where organization_id = %s").format(
                    sql.Identifier(table)
                )
                found.update(r[0] for r in conn.execute(q, (org_id,)).fetchall() if len(r[0]) == 36)
    return found
