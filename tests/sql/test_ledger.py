"""The stock ledger and its guards, audit rows, updated_at, events and organization deletion."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.support.domain import (
    World,
    acting,
    call,
    error_of,
    items,
    ledger_mismatches,
    make_product,
    new_user,
    stock,
)

DIRECT_WRITES = [
    "update public.stock_movements set reason = 'edited'",
    "delete from public.stock_movements",
    "insert into public.stock_movements (organization_id, product_id, location_id, kind, quantity)"
    " select organization_id, product_id, location_id, 'adjustment', 1"
    " from public.stock_levels limit 1",
    "update public.stock_levels set on_hand = on_hand + 1",
    "delete from public.stock_levels",
    "update public.lots set quantity = quantity + 1",
    "delete from public.lots",
    "truncate public.stock_movements cascade",
]


@pytest.mark.parametrize("statement", DIRECT_WRITES)
def test_direct_ledger_writes_refused_even_for_superuser(conn, world: World, statement) -> None:
    """The dashboard's superuser cannot edit the ledger, stock levels or lots directly."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate == "PT409"
    assert caught.value.diag.message_hint in {"ledger_append_only", "ledger_direct_write"}


def test_ledger_flag_is_needed_and_movements_stay_append_only(conn, world: World) -> None:
    """With nimbus.ledger_write on, stock_levels accepts a write; movements still refuse edits."""
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    assert conn.execute("update public.lots set quantity = quantity").rowcount > 0
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("delete from public.stock_movements")
    assert error_of(caught.value) == ("PT409", "ledger_append_only")


@pytest.mark.parametrize(
    "statement",
    [
        "update public.audit_log set actor = null",
        "delete from public.audit_log",
        "truncate public.audit_log",
    ],
)
def test_audit_log_is_append_only(conn, world: World, statement: str) -> None:
    """Nobody edits or deletes audit rows, not even the superuser."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate == "PT409"


def test_functions_keep_on_hand_equal_to_ledger(conn, world: World) -> None:
    """Adjustments, transfers, sales and receipts in sequence keep on_hand == sum(movements)."""
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    product = make_product(conn, world.a.id, f"L-{uuid.uuid4().hex[:8]}")
    conn.commit()
    stock(conn, staff, product, wh, 20, lot_number="A", expiry_date="2030-05-05")
    stock(conn, staff, product, wh, 5)
    call(conn, staff, "select public.adjust_stock(%s, %s, -3, 'broken')", (product, wh))
    call(conn, staff, "select public.adjust_stock(%s, %s, -2, 'count', 'A')", (product, wh))
    moved = call(conn, staff, "select public.transfer_stock(%s, %s, %s, 12)", (product, wh, st))
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (st, items((product, 4))),
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order,))
    purchase = call(
        conn,
        manager,
        "select public.create_order('purchase', %s, %s) ->> 'id'",
        (wh, items((product, 9))),
    )[0][0]
    call(conn, manager, "select public.update_order_status(%s, 'received')", (purchase,))
    assert ledger_mismatches(world.url) == []
    levels = dict(
        conn.execute(
            "select location_id::text, on_hand from public.stock_levels where product_id = %s",
            (product,),
        ).fetchall()
    )
    assert levels == {wh: 20 + 5 - 3 - 2 - 12 + 9, st: 12 - 4}
    pair = conn.execute(
        "select array_agg(kind order by kind), sum(quantity) from public.stock_movements"
        " where transfer_id = %s",
        (moved[0][0]["transfer_id"],),
    ).fetchone()
    assert pair == (["transfer_in", "transfer_out"], 0)


def test_negative_adjustment_cannot_take_reserved_stock(conn, world: World) -> None:
    """Stock promised to a confirmed order cannot be adjusted away."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    product = make_product(conn, world.a.id, f"R-{uuid.uuid4().hex[:8]}")
    conn.commit()
    stock(conn, staff, product, wh, 5)
    call(conn, staff, "select public.create_order('sales', %s, %s)", (wh, items((product, 4))))
    with pytest.raises(psycopg.Error) as caught, acting(conn, staff):
        conn.execute("select public.adjust_stock(%s, %s, -2, 'loss')", (product, wh))
    assert error_of(caught.value) == ("PT409", "insufficient_stock")


def test_audit_rows_record_actor_and_values(conn, world: World) -> None:
    """Writes through RLS and through functions leave audit rows with the actor and old/new."""
    manager = world.a.users["manager"]
    product = world.a.products["P1"]
    call(conn, manager, "update public.products set name = 'Renamed P1' where id = %s", (product,))
    row = conn.execute(
        "select action, actor::text, actor_role, old_values ->> 'name', new_values ->> 'name',"
        " organization_id::text from public.audit_log"
        " where table_name = 'products' and row_id = %s order by id desc limit 1",
        (product,),
    ).fetchone()
    assert row == ("update", manager, "authenticated", "Product a-P1", "Renamed P1", world.a.id)
    stock(conn, manager, product, world.a.locations["WH1"], 1)
    tables = {
        r[0]
        for r in conn.execute(
            "select table_name from public.audit_log where actor = %s", (manager,)
        ).fetchall()
    }
    assert {"products", "stock_movements", "stock_levels"} <= tables


def test_updated_at_is_maintained(conn, world: World) -> None:
    """updated_at moves on update whoever writes, even if the writer sets it."""
    conn.execute(
        "update public.suppliers set updated_at = '2000-01-01', notes = 'x' where id = %s",
        (world.a.spare["suppliers"],),
    )
    stamp = conn.execute(
        "select updated_at = now() from public.suppliers where id = %s",
        (world.a.spare["suppliers"],),
    ).fetchone()[0]
    assert stamp is True


def test_low_stock_fires_once_per_crossing(conn, world: World) -> None:
    """Falling to the threshold notifies once; staying below is silent; a new crossing notifies."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    product = make_product(conn, world.a.id, f"LS-{uuid.uuid4().hex[:8]}", threshold=5)
    conn.commit()
    stock(conn, staff, product, wh, 10)
    for delta in (-4, -2, -1, 10, -10):
        call(conn, staff, "select public.adjust_stock(%s, %s, %s, 'count')", (product, wh, delta))
    events = conn.execute(
        "select (payload ->> 'on_hand')::numeric from public.notifications"
        " where kind = 'low_stock' and payload ->> 'product_id' = %s order by id",
        (product,),
    ).fetchall()
    assert events == [(4,), (3,)]


def test_status_change_notifies_and_notify_channels_fire(database_url: str, world: World) -> None:
    """An order status change writes a notification and NOTIFYs nimbus_events and
    nimbus_changes."""
    staff = world.a.users["staff"]
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url) as conn,
    ):
        listener.execute("listen nimbus_events")
        listener.execute("listen nimbus_changes")
        order = call(
            conn,
            staff,
            "select public.create_order('sales', %s, %s) ->> 'id'",
            (world.a.locations["WH1"], items((world.a.products["P1"], 1))),
        )[0][0]
        call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
        got = [(n.channel, json.loads(n.payload)) for n in listener.notifies(timeout=1)]
        assert conn.execute(
            "select payload ->> 'to' from public.notifications"
            " where kind = 'order_status' and payload ->> 'order_id' = %s",
            (order,),
        ).fetchall() == [("cancelled",)]
    events = [p for c, p in got if c == "nimbus_events"]
    assert [(e["kind"], e["payload"]["to"]) for e in events] == [("order_status", "cancelled")]
    # (a refresh of the analytics views elsewhere in the session says {"table": ...} alone)
    changes = {(p["table"], p.get("op")) for c, p in got if c == "nimbus_changes"}
    assert {("orders", "insert"), ("orders", "update"), ("stock_levels", "update")} <= changes


def statements(listener: psycopg.Connection) -> list[dict]:
    """The nimbus_changes payloads of writing statements heard within a second (an analytics
    refresh elsewhere in the session says {"table": "analytics_views"} alone: not one of them)."""
    payloads = [json.loads(n.payload) for n in listener.notifies(timeout=1)]
    return [p for p in payloads if p.get("table") != "analytics_views"]


def test_stock_changes_name_their_products(database_url: str, world: World) -> None:
    """A stock statement's nimbus_changes payload names the products it touched and their
    places (the proxy drops only their cached reads); more than 100 products, or none named,
    mean the table; more than 30 places, the products without their places."""
    staff = world.a.users["staff"]
    p1, wh = world.a.products["P1"], world.a.locations["WH1"]
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url) as conn,
    ):
        listener.execute("listen nimbus_changes")
        call(conn, staff, "select public.adjust_stock(%s, %s, 1, 'count')", (p1, wh))
        got = statements(listener)
        stock_tables = {"stock_levels", "stock_movements"}
        named = {(p["table"], p["op"]): p.get("products") for p in got}
        assert named[("stock_levels", "update")] == [p1]
        assert named[("stock_movements", "insert")] == [p1]
        assert stock_tables <= {table for table, _ in named}
        places = {(p["table"], p["op"]): p.get("places") for p in got}
        assert places[("stock_levels", "update")] == [[p1, wh]]
        assert places[("stock_movements", "insert")] == [[p1, wh]]

        # The trigger function itself, on a table of this test's own: 3 products at one place
        # each, 31 products (too many places), then 101 (too many products).
        conn.execute("create temporary table scoped (product_id uuid, location_id uuid)")
        conn.execute(
            "create trigger scoped_insert after insert on scoped referencing new table as"
            " new_rows for each statement execute function private.notify_stock_change()"
        )
        for n in (3, 31, 101):
            conn.execute(
                "insert into scoped select gen_random_uuid(), %s from generate_series(1, %s)",
                (wh, n),
            )
        conn.execute("insert into scoped select gen_random_uuid(), null where false")
        conn.commit()
        got = [p for p in statements(listener) if p["table"] == "scoped"]
    assert [len(p.get("products", ())) for p in got] == [3, 31, 0]
    assert [len(p.get("places", ())) for p in got] == [3, 0, 0]
    assert all(place[1] == wh for place in got[0]["places"])
    assert got[2] == {"table": "scoped", "op": "insert"}
    assert all(len(str(p)) < 8000 for p in got)


def test_deleting_an_organization_cascades_through_the_ledger(conn, database_url: str) -> None:
    """An owner deletes a whole organization with stock, lots, orders and ledger rows; its audit
    trail stays."""
    owner = new_user(conn)
    conn.commit()
    org = call(
        conn,
        owner,
        "select public.create_organization('Doomed', %s) ->> 'id'",
        (f"doomed-{uuid.uuid4().hex[:6]}",),
    )[0][0]
    location = conn.execute(
        "insert into public.locations (organization_id, name, code, kind)"
        " values (%s, 'W', 'W', 'warehouse') returning id::text",
        (org,),
    ).fetchone()[0]
    product = make_product(conn, org, "D-1")
    conn.commit()
    stock(conn, owner, product, location, 8, lot_number="D", expiry_date="2030-01-01")
    order = call(
        conn,
        owner,
        "select public.create_order('sales', %s, %s, idempotency_key => 'd') ->> 'id'",
        (location, items((product, 3))),
    )[0][0]
    call(conn, owner, "select public.update_order_status(%s, 'fulfilled')", (order,))
    assert call(conn, owner, "delete from public.organizations where id = %s returning id", (org,))
    left = conn.execute(
        "select (select count(*) from public.stock_movements where organization_id = %s)"
        " + (select count(*) from public.stock_levels where organization_id = %s)"
        " + (select count(*) from public.lots where organization_id = %s)"
        " + (select count(*) from public.orders where organization_id = %s)",
        (org, org, org, org),
    ).fetchone()[0]
    assert left == 0
    assert (
        conn.execute(
            "select count(*) from public.audit_log"
            " where organization_id = %s and action = 'delete'",
            (org,),
        ).fetchone()[0]
        > 0
    )
