"""Lot expiry is judged by the organization's date (its `timezone` setting), not the database
server's: a lot is usable through its expiry date as the organization's clock reads it.

Before, every rule read the server's current_date: in a zone ahead of it (Pacific/Auckland) a lot
past its date locally could still be sold for up to half a day; in a zone behind it
(America/Los_Angeles) good stock was refused from the server's midnight. The test takes a zone
whose date differs from the server's right now — UTC+14 or UTC-12: at any hour one of them does —
and a lot dated the earlier of the two dates, usable by one date and expired by the other.
"""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest

from tests.support.domain import World, build_world, call, error_of, items, make_product, stock

ZONES = ("Etc/GMT-14", "Etc/GMT+12")  # UTC+14 and UTC-12 (POSIX signs are inverted)


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    """A world of this module's own: its organization a's time zone is changed here."""
    return build_world(database_url)


@pytest.fixture
def zoned(conn, world: World) -> tuple[dt.date, dt.date]:
    """Organization a in a zone whose date is not the server's: (server's date, a's date)."""
    server = conn.execute("select current_date").fetchone()[0]
    for zone in ZONES:
        local = conn.execute("select (now() at time zone %s)::date", (zone,)).fetchone()[0]
        if local != server:
            break
    conn.execute(
        "insert into public.settings as s (organization_id, value)"
        " values (%(o)s, jsonb_build_object('timezone', %(z)s::text))"
        " on conflict (organization_id) do update"
        " set value = s.value || jsonb_build_object('timezone', %(z)s::text)",
        {"o": world.a.id, "z": zone},
    )
    conn.commit()
    assert local != server, "no zone on another date"
    return server, local


def _date_lot(conn, product: str, lot: str, day: dt.date) -> None:
    """Give a received lot its expiry date (as the superuser, with the ledger flag)."""
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute(
        "update public.lots set expiry_date = %s where product_id = %s and lot_number = %s",
        (day, product, lot),
    )
    conn.commit()


def test_lot_expiry_follows_the_organizations_date(conn, world: World, zoned) -> None:
    server, local = zoned
    edge = min(server, local)
    usable = edge >= local  # the zone is behind the server: the lot is still good locally
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    wh = world.a.locations["WH1"]
    product = make_product(conn, world.a.id, f"TZ-{uuid.uuid4().hex[:8]}")
    conn.commit()

    today = call(conn, staff, "select private.organization_today(%s)", (world.a.id,))[0][0]
    assert today == local

    # Receiving a lot dated `edge`: refused exactly when it is past its date locally.
    if usable:
        stock(conn, staff, product, wh, 10, lot_number="EDGE", expiry_date=edge.isoformat())
    else:
        with pytest.raises(psycopg.Error) as caught:
            stock(conn, staff, product, wh, 10, lot_number="EDGE", expiry_date=edge.isoformat())
        assert error_of(caught.value) == ("PT422", "validation_failed")
        stock(conn, staff, product, wh, 10, lot_number="EDGE", expiry_date="2031-01-01")
        _date_lot(conn, product, "EDGE", edge)
    stock(conn, staff, product, wh, 10, lot_number="LATER", expiry_date="2032-01-01")

    # Listed as expiring (days_left 0) only while usable.
    soon = call(
        conn,
        staff,
        "select lot_number, days_left from public.expiring_soon(400, %s) where product_id = %s",
        (world.a.id, product),
    )
    assert ("EDGE", 0) in soon if usable else "EDGE" not in {number for number, _ in soon}

    # A sale of 15 needs EDGE: sold FEFO from it while usable, refused when expired.
    sale = (wh, items((product, 15)))
    if usable:
        order = call(conn, staff, "select public.create_order('sales', %s, %s)", sale)[0][0]
        call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    else:
        with pytest.raises(psycopg.Error) as caught:
            call(conn, staff, "select public.create_order('sales', %s, %s)", sale)
        assert error_of(caught.value) == ("PT409", "insufficient_stock")
    lots = dict(
        conn.execute(
            "select lot_number, quantity::float from public.lots where product_id = %s",
            (product,),
        ).fetchall()
    )
    assert lots == ({"EDGE": 0.0, "LATER": 5.0} if usable else {"EDGE": 10.0, "LATER": 10.0})

    # The expiry scan and the write-off of expired stock follow the same date.
    conn.execute("select private.scan_expiring_lots(null)")
    conn.commit()
    (status,) = conn.execute(
        "select status from public.lots where product_id = %s and lot_number = 'EDGE'",
        (product,),
    ).fetchone()
    assert status == ("available" if usable else "expired")
    result = call(conn, manager, "select public.write_off_expired(%s)", (wh,))[0][0]
    written = {(w["product_id"], w["lot_number"]) for w in result["written_off"]}
    assert ((product, "EDGE") in written) is (not usable)


def test_the_dashboards_counts_follow_the_organizations_date(conn, world: World, zoned) -> None:
    """private.organization_summary (the dashboard's expiring and low-stock counts) judges lots
    by the organization's date at its refresh, as expiring_soon and low_stock_products do: a
    lot on the edge, not yet marked by the expiry scan, is counted the same way by the view and
    by the functions (before, the view read the server's date)."""
    server, local = zoned
    edge = min(server, local)
    staff = world.a.users["staff"]
    product = make_product(conn, world.a.id, f"TZD-{uuid.uuid4().hex[:8]}")
    conn.execute("update public.products set low_stock_threshold = 5 where id = %s", (product,))
    conn.commit()
    stock(
        conn, staff, product, world.a.locations["WH1"], 10, lot_number="E", expiry_date="2031-01-01"
    )
    _date_lot(conn, product, "E", edge)  # usable by one date, expired by the other
    # As it stands between a local midnight and the next expiry scan: still marked available.
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute("update public.lots set status = 'available' where product_id = %s", (product,))
    conn.commit()

    conn.execute("select private.refresh_analytics_views(false)")
    conn.commit()
    summary = conn.execute(
        "select expiring_count, low_stock_count from private.organization_summary"
        " where organization_id = %s",
        (world.a.id,),
    ).fetchone()
    expiring = call(
        conn, staff, "select count(*) from public.expiring_soon(null, %s)", (world.a.id,)
    )
    low = call(
        conn, staff, "select count(*) from public.low_stock_products(null, %s)", (world.a.id,)
    )
    assert summary == (expiring[0][0], low[0][0])
