"""Low-stock alerts: judged on available stock, once per crossing, never for inactive products.

Every write goes through a committed transaction (the low-stock triggers on stock_levels and
lots are deferred to commit, so they judge the transaction's final numbers).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, acting, call, error_of, items, make_product, new_user, stock

ALERTS = (
    "select payload from public.notifications"
    " where kind = 'low_stock' and payload ->> 'product_id' = %s order by id"
)


def alerts(conn: psycopg.Connection, product: str) -> list[dict]:
    """The low_stock payloads of a product, oldest first (read in a fresh transaction)."""
    conn.commit()
    return [row[0] for row in conn.execute(ALERTS, (product,)).fetchall()]


def fresh(conn: psycopg.Connection, world: World, threshold: int | None = 5) -> str:
    """A new product of organization a with its own threshold (committed)."""
    product = make_product(conn, world.a.id, f"AL-{uuid.uuid4().hex[:8]}", threshold=threshold)
    conn.commit()
    return product


def adjust(conn: psycopg.Connection, uid: str, product: str, location: str, delta) -> None:
    """adjust_stock as uid, committed."""
    call(conn, uid, "select public.adjust_stock(%s, %s, %s, 'test')", (product, location, delta))


def set_product(conn: psycopg.Connection, uid: str, product: str, **values) -> None:
    """Update product columns as uid (RLS and the triggers as a client sees them), committed."""
    sets = ", ".join(f"{column} = %s" for column in values)
    call(
        conn,
        uid,
        f"update public.products set {sets} where id = %s",
        (*values.values(), product),
    )


def test_reserving_every_unit_alerts(conn, world: World) -> None:
    """10 on hand, threshold 2: a sales order reserving all 10 leaves 0 available -> one alert
    (on_hand never moved); cancelling it re-arms."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    product = fresh(conn, world, threshold=2)
    stock(conn, staff, product, wh, 10)
    assert alerts(conn, product) == []
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((product, 10))),
    )[0][0]
    got = alerts(conn, product)
    assert len(got) == 1
    assert float(got[0]["on_hand"]) == 10 and float(got[0]["reserved"]) == 10
    assert float(got[0]["available"]) == 0 and got[0]["threshold"] == 2
    assert got[0]["location_id"] == wh
    rows = call(conn, staff, "select product_id, available from public.low_stock_products()")
    assert (uuid.UUID(product), 0) in [(r[0], r[1]) for r in rows]
    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
    assert conn.execute(
        "select low from private.low_stock_states where product_id = %s", (product,)
    ).fetchone() == (False,)
    assert len(alerts(conn, product)) == 1


def test_threshold_raised_above_available_alerts_once(conn, world: World) -> None:
    """20 available, threshold 5 -> 30 alerts once; -> 40 stays low (silent); -> 10 re-arms;
    -> 25 alerts again."""
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world, threshold=5)
    stock(conn, manager, product, wh, 20)
    set_product(conn, manager, product, low_stock_threshold=30)
    got = alerts(conn, product)
    assert [(float(a["available"]), a["threshold"]) for a in got] == [(20, 30)]
    set_product(conn, manager, product, low_stock_threshold=40)
    assert len(alerts(conn, product)) == 1
    set_product(conn, manager, product, low_stock_threshold=10)
    assert len(alerts(conn, product)) == 1
    set_product(conn, manager, product, low_stock_threshold=25)
    assert [a["threshold"] for a in alerts(conn, product)] == [30, 25]


def test_new_stock_level_starting_below_alerts_once(conn, world: World) -> None:
    """The first stock of a product at a location, already at or below its threshold, alerts;
    a second write that stays below does not."""
    staff, st1 = world.a.users["staff"], world.a.locations["ST1"]
    product = fresh(conn, world, threshold=5)
    stock(conn, staff, product, st1, 3)
    got = alerts(conn, product)
    assert [(float(a["on_hand"]), float(a["available"])) for a in got] == [(3, 3)]
    stock(conn, staff, product, st1, 1)
    adjust(conn, staff, product, st1, -2)
    assert len(alerts(conn, product)) == 1


def test_rising_above_rearms(conn, world: World) -> None:
    """Low (alert), above (silent, re-armed), low again (a second alert), per location."""
    staff, wh, st1 = world.a.users["staff"], world.a.locations["WH1"], world.a.locations["ST1"]
    product = fresh(conn, world, threshold=5)
    stock(conn, staff, product, wh, 3)
    stock(conn, staff, product, st1, 20)
    for delta in (10, -5, -5):
        adjust(conn, staff, product, wh, delta)
    got = alerts(conn, product)
    assert [(a["location_id"], float(a["available"])) for a in got] == [(wh, 3), (wh, 3)]


def test_inactive_product_never_alerts(conn, world: World) -> None:
    """An inactive (or archived) product is silent however low; reactivated, it alerts once."""
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world, threshold=5)
    set_product(conn, manager, product, active=False)
    stock(conn, manager, product, wh, 3)
    adjust(conn, manager, product, wh, -1)
    set_product(conn, manager, product, low_stock_threshold=50)
    assert alerts(conn, product) == []
    rows = call(conn, manager, "select product_id from public.low_stock_products()")
    assert uuid.UUID(product) not in [r[0] for r in rows]
    set_product(conn, manager, product, active=True)
    assert len(alerts(conn, product)) == 1
    set_product(conn, manager, product, active=False, archived_at=dt.datetime.now(dt.UTC))
    set_product(conn, manager, product, low_stock_threshold=60)
    adjust(conn, manager, product, wh, -1)
    assert len(alerts(conn, product)) == 1


def test_default_threshold_change_alerts_products_without_their_own(conn) -> None:
    """Raising the organization's default_low_stock_threshold alerts, once, the products that
    use it and are now low; products with their own threshold are unaffected."""
    owner = new_user(conn)
    conn.commit()
    org = call(
        conn,
        owner,
        "select public.create_organization('Alerts', %s) ->> 'id'",
        (f"alerts-{uuid.uuid4().hex[:8]}",),
    )[0][0]
    wh = str(
        conn.execute(
            "insert into public.locations (organization_id, name, code, kind)"
            " values (%s, 'WH', 'WH', 'warehouse') returning id",
            (org,),
        ).fetchone()[0]
    )
    uses_default = make_product(conn, org, f"D-{uuid.uuid4().hex[:6]}")
    own = make_product(conn, org, f"O-{uuid.uuid4().hex[:6]}", threshold=5)
    conn.commit()
    for product in (uses_default, own):
        stock(conn, owner, product, wh, 20)

    def default(value: int) -> None:
        call(
            conn,
            owner,
            "update public.settings set value = value || %s where organization_id = %s",
            (Jsonb({"default_low_stock_threshold": value}), org),
        )

    default(25)
    got = alerts(conn, uses_default)
    assert [(float(a["available"]), a["threshold"]) for a in got] == [(20, 25)]
    assert alerts(conn, own) == []
    default(30)
    assert len(alerts(conn, uses_default)) == 1
    default(15)
    default(20)
    assert [a["threshold"] for a in alerts(conn, uses_default)] == [25, 20]
    assert alerts(conn, own) == []


def test_quarantined_lot_is_not_available(conn, world: World) -> None:
    """3 loose + 10 in a lot, threshold 5: quarantining the lot leaves 3 available (alert);
    releasing it re-arms; the alert names the numbers."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world, threshold=5)
    expiry = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    stock(conn, staff, product, wh, 10, lot_number="Q-1", expiry_date=expiry)
    stock(conn, staff, product, wh, 3)
    assert alerts(conn, product) == []
    lot = str(
        conn.execute(
            "select id from public.lots where product_id = %s and lot_number = 'Q-1'", (product,)
        ).fetchone()[0]
    )
    (row,) = call(conn, manager, "select public.set_lot_status(%s, 'quarantined')", (lot,))[0]
    assert row["status"] == "quarantined" and row["id"] == lot
    got = alerts(conn, product)
    assert [(float(a["on_hand"]), float(a["available"])) for a in got] == [(13, 3)]
    call(conn, manager, "select public.set_lot_status(%s, 'available')", (lot,))
    assert conn.execute(
        "select low from private.low_stock_states where product_id = %s", (product,)
    ).fetchone() == (False,)
    assert len(alerts(conn, product)) == 1


def test_set_lot_status_rules(conn, world: World) -> None:
    """Manager and above; only available/quarantined; another organization's lot is not found;
    an expired lot stays expired."""
    a, b = world.a, world.b
    product = fresh(conn, world)
    expiry = (dt.date.today() + dt.timedelta(days=100)).isoformat()
    stock(
        conn, a.users["staff"], product, a.locations["WH1"], 4, lot_number="R-1", expiry_date=expiry
    )
    lot = str(
        conn.execute("select id from public.lots where product_id = %s", (product,)).fetchone()[0]
    )
    cases = [
        (a.users["staff"], lot, "quarantined", ("PT403", "forbidden")),
        (a.users["manager"], lot, "expired", ("PT422", "validation_failed")),
        (a.users["manager"], lot, None, ("PT422", "validation_failed")),
        (b.users["owner"], lot, "quarantined", ("PT404", "not_found")),
        (a.users["manager"], str(uuid.uuid4()), "quarantined", ("PT404", "not_found")),
    ]
    for uid, lot_id, status, expected in cases:
        with pytest.raises(psycopg.Error) as caught, acting(conn, uid, commit=False):
            conn.execute("select public.set_lot_status(%s, %s)", (lot_id, status))
        assert error_of(caught.value) == expected, (status, expected)
    # Time passes: the lot's date is behind us (written as the superuser, triggers off).
    conn.commit()
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute("update public.lots set expiry_date = current_date - 1 where id = %s", (lot,))
    for status in ("available", "quarantined"):
        with pytest.raises(psycopg.Error) as caught, acting(conn, a.users["manager"], commit=False):
            conn.execute("select public.set_lot_status(%s, %s)", (lot, status))
        assert error_of(caught.value) == ("PT409", "lot_expired")
    conn.execute("select private.scan_expiring_lots(%s)", (lot,))
    conn.commit()
    assert conn.execute("select status from public.lots where id = %s", (lot,)).fetchone() == (
        "expired",
    )


def test_expiring_lot_makes_its_product_low(conn, database_url: str, world: World) -> None:
    """A lot that passes its date leaves available; once the scan expires it the product alerts
    (NOTIFY included), and a second scan changes nothing."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    product = fresh(conn, world, threshold=5)
    expiry = (dt.date.today() + dt.timedelta(days=100)).isoformat()
    stock(conn, staff, product, wh, 8, lot_number="E-1", expiry_date=expiry)
    stock(conn, staff, product, wh, 2)
    conn.commit()
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "update public.lots set expiry_date = current_date - 3"
            " where product_id = %s and lot_number = 'E-1'",
            (product,),
        )
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("listen nimbus_events")
        conn.execute("select private.scan_expiring_lots()")
        conn.commit()
        events = [json.loads(n.payload) for n in listener.notifies(timeout=1)]
    mine = [e for e in events if e["payload"].get("product_id") == product]
    assert sorted(e["kind"] for e in mine) == ["lot_expired", "low_stock"]
    got = alerts(conn, product)
    assert [(float(a["on_hand"]), float(a["available"])) for a in got] == [(10, 2)]
    conn.execute("select private.scan_expiring_lots()")
    assert len(alerts(conn, product)) == 1


def test_clients_cannot_evaluate_or_read_the_states(conn) -> None:
    """authenticated may neither run the evaluation nor read private.low_stock_states."""
    for sql in (
        "select private.evaluate_low_stock(gen_random_uuid())",
        "select * from private.low_stock_states",
    ):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            acting(conn, str(uuid.uuid4()), commit=False),
        ):
            conn.execute(sql)
