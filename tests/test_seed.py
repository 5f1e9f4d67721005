"""Seeding: seed_demo is idempotent and quick, the data keeps the ledger invariants, same seed
gives the same data."""

from __future__ import annotations

import datetime as dt
import os
import secrets

import psycopg
import pytest
from psycopg import sql

from proxy.local.migrate import migrate
from proxy.local.seeding import OrgSpec, ensure_user, load_organization, seed_demo_org, stable_uuid
from tests.conftest import SQL_DIR
from tests.support.invariant import inventory_violations

ADMIN_URL = os.environ.get("NIMBUS_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TWIN = OrgSpec("twin", "Twin", 60, 2, 3, 120, 12)

COUNTS = """
select (select count(*) from public.products), (select count(*) from public.orders),
  (select count(*) from public.order_items), (select count(*) from public.stock_movements),
  (select count(*) from public.stock_levels), (select count(*) from public.lots)
"""

CHECKSUM = """
select md5(concat_ws('|',
  (select string_agg(concat_ws(',', p.id, p.sku, p.name, p.price, p.unit_cost, p.supplier_id),
     ';' order by p.sku) from public.products as p where p.organization_id = %(o)s),
  (select string_agg(concat_ws(',', o.number, o.kind, o.status, o.completed_at, i.line_no,
     i.product_id, i.quantity, i.unit_price), ';' order by o.number, i.line_no)
   from public.orders as o join public.order_items as i on i.order_id = o.id
   where o.organization_id = %(o)s),
  (select string_agg(concat_ws(',', m.product_id, m.location_id, m.kind, m.quantity,
     m.created_at), ';' order by m.id) from public.stock_movements as m
   where m.organization_id = %(o)s),
  (select string_agg(concat_ws(',', l.product_id, l.location_id, l.on_hand), ';'
     order by l.product_id, l.location_id) from public.stock_levels as l
   where l.organization_id = %(o)s)))
"""


def test_seed_demo_is_idempotent(database_url: str) -> None:
    """A second seed_demo returns the same ids and adds no rows."""
    first = seed_demo_org(database_url)
    with psycopg.connect(database_url) as conn:
        before = conn.execute(COUNTS).fetchone()
        role = conn.execute(
            "select role from public.memberships where user_id = %s and organization_id = %s",
            (first["user_id"], first["organization_id"]),
        ).fetchone()
    second = seed_demo_org(database_url)
    with psycopg.connect(database_url) as conn:
        after = conn.execute(COUNTS).fetchone()
    assert first == second
    assert first["email"] == "demo@nimbus.local" and role == ("owner",)
    assert before == after and before[2] > 1000


def test_demo_data_keeps_the_ledger_invariants(database_url: str) -> None:
    """on_hand = sum of movements per product and location, never negative; lots within stock.
    Judged on the demo organization's rows: the session database also holds other tests' data,
    some of it written with back-dated timestamps on purpose (the time-zone tests)."""
    org = seed_demo_org(database_url)["organization_id"]
    with psycopg.connect(database_url) as conn:
        mismatched = conn.execute(
            "select count(*) from (select * from public.stock_levels where organization_id = %s)"
            " as s full join (select product_id, location_id, sum(quantity) as q"
            " from public.stock_movements where organization_id = %s group by 1, 2) as m"
            " using (product_id, location_id) where s.on_hand is distinct from m.q",
            (org, org),
        ).fetchone()[0]
        negative = conn.execute(
            "select count(*) from (select product_id, location_id, sum(quantity) over"
            " (partition by product_id, location_id order by created_at, id) as running"
            " from public.stock_movements where organization_id = %s) as r where running < 0",
            (org,),
        ).fetchone()[0]
        lots_over = conn.execute(
            "select count(*) from (select product_id, location_id, sum(quantity) as q"
            " from public.lots where organization_id = %s group by 1, 2) as l"
            " join public.stock_levels as s using (product_id, location_id) where l.q > s.on_hand",
            (org,),
        ).fetchone()[0]
        numbers = conn.execute(
            "select count(*) from private.order_numbers as n where n.organization_id = %s"
            " and n.last_number <> (select max(number) from public.orders as o"
            " where o.organization_id = n.organization_id)",
            (org,),
        ).fetchone()[0]
    assert (mismatched, negative, lots_over, numbers) == (0, 0, 0, 0)


@pytest.fixture
def second_database():
    """Another fresh migrated database, dropped afterwards."""
    name = f"nimbus_test_seed_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        migrate(url, sql_dir=SQL_DIR, echo=lambda _line: None)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def test_same_seed_same_data(database_url: str, second_database: str) -> None:
    """The same seed loads identical rows (ids included) into two databases."""
    until = dt.datetime.now(dt.UTC).date()
    sums = []
    for url in (database_url, second_database):
        with psycopg.connect(url, autocommit=True) as conn:
            owner = ensure_user(conn, "owner@twin.example", stable_uuid(11, "twin:owner"))
            org = load_organization(conn, TWIN, seed=11, owner_id=owner, until=until)
            sums.append(conn.execute(CHECKSUM, {"o": org}).fetchone()[0])
    assert sums[0] == sums[1]


def test_nimbus_seed_keeps_the_full_invariant(second_database: str) -> None:
    """`nimbus seed` (demo scale) leaves a database the full inventory invariant holds in:
    ledger, lots, reservations, cost layers, average costs, no NaN."""
    from click.testing import CliRunner

    from proxy.local.datacli import seed

    result = CliRunner().invoke(seed, ["--scale", "demo", "--database-url", second_database])
    assert result.exit_code == 0, result.output
    assert inventory_violations(second_database) == []
    with psycopg.connect(second_database) as conn:
        lots, expired, untracked, costs, layers, takes = conn.execute(
            "select (select count(*) from public.lots),"
            " (select count(*) from public.lots where expiry_date < current_date),"
            " (select count(*) from public.lots as l where not exists (select from"
            "  public.stock_movements as m where m.lot_id = l.id)),"
            " (select count(*) from public.products as p where not exists (select from"
            "  private.product_costs as c where c.product_id = p.id)),"
            " (select count(*) from private.cost_layers where remaining > 0),"
            " (select count(*) from private.cost_layer_takes)"
        ).fetchone()
    assert lots > 100 and (expired, untracked, costs) == (0, 0, 0)
    assert layers > 0 and takes > 0
