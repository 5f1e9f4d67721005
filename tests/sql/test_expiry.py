"""Expired and quarantined lots are never available: not reserved, picked, sold or moved.

A lot cannot be received already expired, so a test lets time pass by moving a lot's expiry date
into the past as the superuser (with the ledger flag, as only a test may).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, call, error_of, items, make_product, stock


@pytest.fixture
def lotted(conn, world: World):
    """A product at WH1 with lot OLD (10, expires first) and lot NEW (10, later)."""
    product = make_product(conn, world.a.id, f"E-{uuid.uuid4().hex[:8]}")
    conn.commit()
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 10, lot_number="OLD", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 10, lot_number="NEW", expiry_date="2032-01-01")
    return product


def _expire(conn, product: str, lot: str, status: str | None = None) -> None:
    """Let time pass: the lot's expiry date becomes yesterday (or only its status changes)."""
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    if status:
        conn.execute(
            "update public.lots set status = %s where product_id = %s and lot_number = %s",
            (status, product, lot),
        )
    else:
        conn.execute(
            "update public.lots set expiry_date = current_date - 1"
            " where product_id = %s and lot_number = %s",
            (product, lot),
        )
    conn.commit()


def _lots(conn, product: str, location: str) -> dict[str, float]:
    """{lot_number: quantity} of the product at the location."""
    rows = conn.execute(
        "select lot_number, quantity from public.lots where product_id = %s and location_id = %s",
        (product, location),
    ).fetchall()
    return {number: float(qty) for number, qty in rows}


@pytest.mark.parametrize("status", [None, "quarantined"])
def test_unusable_lot_is_not_available(conn, world: World, lotted, status) -> None:
    """available = on_hand - reserved - expired/quarantined lots; an order beyond it is PT409."""
    wh = world.a.locations["WH1"]
    _expire(conn, lotted, "OLD", status)
    available = conn.execute("select private.available_quantity(%s, %s)", (lotted, wh)).fetchone()[
        0
    ]
    assert available == 10
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.create_order('sales', %s, %s)",
            (wh, items((lotted, 11))),
        )
    assert error_of(caught.value) == ("PT409", "insufficient_stock")


def test_sale_skips_the_expired_lot(conn, world: World, lotted) -> None:
    """FEFO would pick OLD first; expired, it is skipped and NEW is sold instead."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    _expire(conn, lotted, "OLD")
    order = call(
        conn, staff, "select public.create_order('sales', %s, %s)", (wh, items((lotted, 4)))
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    assert _lots(conn, lotted, wh) == {"OLD": 10.0, "NEW": 6.0}


def test_reserved_stock_that_expires_does_not_ship(conn, world: World, lotted) -> None:
    """Reserved while good, expired before fulfilment: fulfilling more than usable is PT409."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    order = call(
        conn, staff, "select public.create_order('sales', %s, %s)", (wh, items((lotted, 15)))
    )[0][0]
    _expire(conn, lotted, "OLD")
    with pytest.raises(psycopg.Error) as caught:
        call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    assert error_of(caught.value) == ("PT409", "insufficient_stock")
    assert _lots(conn, lotted, wh) == {"OLD": 10.0, "NEW": 10.0}


def test_transfer_and_adjustment_never_move_expired_stock(conn, world: World, lotted) -> None:
    """A transfer takes only usable lots; removing stock FEFO skips the expired lot too."""
    staff = world.a.users["staff"]
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    _expire(conn, lotted, "OLD")
    with pytest.raises(psycopg.Error) as caught:
        call(conn, staff, "select public.transfer_stock(%s, %s, %s, 11)", (lotted, wh, st))
    assert error_of(caught.value) == ("PT409", "insufficient_stock")
    call(conn, staff, "select public.transfer_stock(%s, %s, %s, 4)", (lotted, wh, st))
    call(conn, staff, "select public.adjust_stock(%s, %s, -1, 'broken')", (lotted, wh))
    assert _lots(conn, lotted, wh) == {"OLD": 10.0, "NEW": 5.0}
    assert _lots(conn, lotted, st) == {"NEW": 4.0}


def test_expired_lot_can_still_be_removed_by_name(conn, world: World, lotted) -> None:
    """Stock of an expired lot leaves only on purpose: an adjustment naming the lot."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    _expire(conn, lotted, "OLD")
    call(conn, staff, "select public.adjust_stock(%s, %s, -10, 'expired', 'OLD')", (lotted, wh))
    assert _lots(conn, lotted, wh) == {"OLD": 0.0, "NEW": 10.0}


def test_receiving_an_expired_lot_is_refused(conn, world: World) -> None:
    """A lot whose date has passed cannot be received (PT422)."""
    product = make_product(conn, world.a.id, f"E-{uuid.uuid4().hex[:8]}")
    conn.commit()
    with pytest.raises(psycopg.Error) as caught:
        stock(
            conn,
            world.a.users["staff"],
            product,
            world.a.locations["WH1"],
            5,
            lot_number="STALE",
            expiry_date="2020-01-01",
        )
    assert error_of(caught.value) == ("PT422", "validation_failed")


def test_existing_lot_number_with_another_expiry_is_a_conflict(conn, world: World, lotted) -> None:
    """Receiving into lot OLD with another date is PT409 lot_expiry_mismatch, not ignored."""
    with pytest.raises(psycopg.Error) as caught:
        stock(
            conn,
            world.a.users["staff"],
            lotted,
            world.a.locations["WH1"],
            5,
            lot_number="OLD",
            expiry_date="2033-03-03",
        )
    assert error_of(caught.value) == ("PT409", "lot_expiry_mismatch")
    stock(
        conn,
        world.a.users["staff"],
        lotted,
        world.a.locations["WH1"],
        5,
        lot_number="OLD",
        expiry_date="2031-01-01",
    )
    assert _lots(conn, lotted, world.a.locations["WH1"])["OLD"] == 15.0


def test_purchase_receipt_of_an_expired_lot_is_refused(conn, world: World) -> None:
    """Receiving a purchase order into a lot dated in the past writes nothing."""
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    product = make_product(conn, world.a.id, f"E-{uuid.uuid4().hex[:8]}")
    conn.commit()
    order = call(
        conn, manager, "select public.create_order('purchase', %s, %s)", (wh, items((product, 5)))
    )[0][0]
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            manager,
            "select public.update_order_status(%s, 'received', %s)",
            (
                order["id"],
                Jsonb([{"product_id": product, "lot_number": "X", "expiry_date": "2020-02-02"}]),
            ),
        )
    assert error_of(caught.value) == ("PT422", "validation_failed")


@pytest.mark.parametrize("call_sql", ["adjust", "transfer_in", "transfer_out"])
def test_inactive_location_refuses_every_movement(conn, world: World, call_sql: str) -> None:
    """An inactive location takes no adjustment and no transfer either way (PT409)."""
    staff = world.a.users["staff"]
    product = make_product(conn, world.a.id, f"E-{uuid.uuid4().hex[:8]}")
    closed = str(
        conn.execute(
            "insert into public.locations (organization_id, name, code, kind)"
            " values (%s, 'Closed', %s, 'store') returning id",
            (world.a.id, f"X{uuid.uuid4().hex[:6]}"),
        ).fetchone()[0]
    )
    conn.commit()
    stock(conn, staff, product, closed, 5)
    stock(conn, staff, product, world.a.locations["WH1"], 5)
    conn.execute("update public.locations set active = false where id = %s", (closed,))
    conn.commit()
    statements = {
        "adjust": ("select public.adjust_stock(%s, %s, 1, 'found')", (product, closed)),
        "transfer_in": (
            "select public.transfer_stock(%s, %s, %s, 1)",
            (product, world.a.locations["WH1"], closed),
        ),
        "transfer_out": (
            "select public.transfer_stock(%s, %s, %s, 1)",
            (product, closed, world.a.locations["WH1"]),
        ),
    }
    with pytest.raises(psycopg.Error) as caught:
        call(conn, staff, *statements[call_sql])
    assert error_of(caught.value) == ("PT409", "location_inactive")
