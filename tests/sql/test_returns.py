"""Returns and write-offs: a customer return comes back at the cost it left with, a return to
the supplier leaves stock, write-offs (damaged, expired, lost) never take reserved stock, and
all expired stock of a location or organization goes in one call."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, acting, call, error_of, items, make_product, stock

RETURN = "select public.return_order(%s, %s, %s)"
WRITE_OFF = "select public.write_off_stock(%s, %s, %s::numeric, %s, %s)"
EXPIRED = "select public.write_off_expired(%s)"


def _product(conn, world: World, cost=4) -> str:
    """A new product of organization a (unit each) with catalog cost `cost` and no stock."""
    product = make_product(conn, world.a.id, f"R-{uuid.uuid4().hex[:10]}", price=20)
    conn.execute("update public.products set unit_cost = %s where id = %s", (cost, product))
    conn.commit()
    return product


def _refused(conn, uid: str, query: str, params) -> tuple[str | None, str | None, str | None]:
    """(SQLSTATE, hint, detail) of the error a call as `uid` raises; nothing it did is kept."""
    with pytest.raises(psycopg.Error) as info, acting(conn, uid, commit=False):
        conn.execute(query, params)
    return (*error_of(info.value), info.value.diag.message_detail)


def _level(conn, product: str, location: str) -> tuple:
    """(on_hand, reserved) of a product at a location."""
    row = conn.execute(
        "select on_hand, reserved from public.stock_levels"
        " where product_id = %s and location_id = %s",
        (product, location),
    ).fetchone()
    conn.commit()
    return row


def _lots(conn, product: str, location: str) -> dict[str, Decimal]:
    """{lot_number: quantity} of a product at a location."""
    rows = conn.execute(
        "select lot_number, quantity from public.lots where product_id = %s and location_id = %s",
        (product, location),
    ).fetchall()
    conn.commit()
    return dict(rows)


def _receive(conn, world: World, product: str, qty, price, lot: str | None = None) -> dict:
    """A purchase order of qty @ price at WH1, received in full (into `lot` when given)."""
    manager = world.a.users["manager"]
    order = call(
        conn,
        manager,
        "select public.create_order('purchase', %s, %s)",
        (
            world.a.locations["WH1"],
            Jsonb([{"product_id": product, "quantity": qty, "unit_price": price}]),
        ),
    )[0][0]
    line = {"product_id": product, "quantity": qty} | ({"lot_number": lot} if lot else {})
    return call(conn, manager, "select public.receive_order(%s, %s)", (order["id"], Jsonb([line])))[
        0
    ][0]


def _sell(conn, world: World, product: str, qty) -> dict:
    """A sales order of qty at WH1, confirmed and fulfilled in full, as staff."""
    staff = world.a.users["staff"]
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s)",
        (world.a.locations["WH1"], items((product, qty))),
    )[0][0]
    return call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))[
        0
    ][0]


def _expire(conn, product: str, lot: str) -> None:
    """Let time pass: the lot's expiry date becomes yesterday."""
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute(
        "update public.lots set expiry_date = current_date - 1"
        " where product_id = %s and lot_number = %s",
        (product, lot),
    )
    conn.commit()


def _costs(conn, product: str) -> tuple:
    """(quantity, value) of the product's weighted average cost row."""
    row = conn.execute(
        "select quantity, value from private.product_costs where product_id = %s", (product,)
    ).fetchone()
    conn.commit()
    return row


def test_customer_return_comes_back_at_its_issue_cost(conn, world: World) -> None:
    """Receive 10 @ 5 and 10 @ 7, sell 15 (WAC 6.00 a unit, FIFO 85 / 15), a customer returns 3:
    back at 6.00 (wac 18.00) and 85/15 (fifo 17.00); at most what was sold, minus returns."""
    product = _product(conn, world)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    _receive(conn, world, product, 10, "5.00")
    _receive(conn, world, product, 10, "7.00")
    sale = _sell(conn, world, product, 15)
    assert sale["items"][0]["unit_cost"] == 6
    assert _costs(conn, product) == (5, 30)

    line = [{"product_id": product, "quantity": 3}]
    got = call(conn, staff, RETURN, (sale["id"], Jsonb(line), "wrong size"))[0][0]
    assert got["items"][0]["returned_quantity"] == 3 and got["status"] == "fulfilled"
    move = conn.execute(
        "select kind, quantity, unit_cost, wac_value, fifo_value, reason"
        " from public.stock_movements where order_id = %s and kind = 'return'",
        (sale["id"],),
    ).fetchone()
    assert move == ("return", 3, 6, 18, 17, "wrong size")
    assert _level(conn, product, wh) == (8, 0)
    assert _costs(conn, product) == (8, 48)

    too_many = Jsonb([{"product_id": product, "quantity": 13}])
    assert _refused(conn, staff, RETURN, (sale["id"], too_many, None))[:2] == (
        "PT409",
        "over_return",
    )
    not_sold = Jsonb([{"product_id": product, "quantity": 1, "lot_number": f"PO{sale['number']}"}])
    assert _refused(conn, staff, RETURN, (sale["id"], not_sold, None))[:2] in (
        ("PT404", "not_found"),
        ("PT422", "validation_failed"),
    )
    nan = Jsonb([{"product_id": product, "quantity": "NaN"}])
    assert _refused(conn, staff, RETURN, (sale["id"], nan, None)) == (
        "PT422",
        "validation_failed",
        "quantity",
    )
    assert _refused(conn, world.a.users["viewer"], RETURN, (sale["id"], Jsonb(line), None))[:2] == (
        "PT403",
        "forbidden",
    )
    call(conn, staff, RETURN, (sale["id"], Jsonb([{"product_id": product, "quantity": 12}]), None))
    assert _refused(conn, staff, RETURN, (sale["id"], Jsonb(line), None))[:2] == (
        "PT409",
        "over_return",
    )


def test_customer_return_into_the_lot_it_was_sold_from(conn, world: World) -> None:
    """A return naming a lot goes back into it, if this order sold from that lot."""
    product = _product(conn, world)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 5, lot_number="L1", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 5, lot_number="L2", expiry_date="2032-01-01")
    sale = _sell(conn, world, product, 4)
    back = Jsonb([{"product_id": product, "quantity": 2, "lot_number": "L1"}])
    call(conn, staff, RETURN, (sale["id"], back, None))
    assert _lots(conn, product, wh) == {"L1": 3, "L2": 5}
    other = Jsonb([{"product_id": product, "quantity": 1, "lot_number": "L2"}])
    assert _refused(conn, staff, RETURN, (sale["id"], other, None)) == (
        "PT422",
        "validation_failed",
        "lot_number",
    )


def test_return_to_supplier_leaves_stock(conn, world: World) -> None:
    """A received purchase line goes back out of stock from its lot (even once expired), never
    more than received minus returned, never reserved stock."""
    product = _product(conn, world)
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    po = _receive(conn, world, product, 10, "5.00", lot="SUP-1")
    back = Jsonb([{"product_id": product, "quantity": 4, "lot_number": "SUP-1"}])
    got = call(conn, manager, RETURN, (po["id"], back, "faulty batch"))[0][0]
    assert got["items"][0]["returned_quantity"] == 4
    assert _lots(conn, product, wh) == {"SUP-1": 6}
    move = conn.execute(
        "select quantity, unit_cost, wac_value from public.stock_movements"
        " where order_id = %s and kind = 'return'",
        (po["id"],),
    ).fetchone()
    assert move == (-4, 5, -20)
    too_many = Jsonb([{"product_id": product, "quantity": 7}])
    assert _refused(conn, manager, RETURN, (po["id"], too_many, None))[:2] == (
        "PT409",
        "over_return",
    )
    staff = world.a.users["staff"]
    assert _refused(conn, staff, RETURN, (po["id"], back, None))[:2] == ("PT403", "forbidden")

    # 5 of the 6 left are reserved: only 1 can go back (FEFO, no lot named).
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((product, 5))),
    )[0][0]
    two = Jsonb([{"product_id": product, "quantity": 2}])
    assert _refused(conn, manager, RETURN, (po["id"], two, None))[:2] == (
        "PT409",
        "insufficient_stock",
    )
    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
    _expire(conn, product, "SUP-1")
    expired = Jsonb([{"product_id": product, "quantity": 2, "lot_number": "SUP-1"}])
    call(conn, manager, RETURN, (po["id"], expired, "expired on arrival"))
    assert _lots(conn, product, wh) == {"SUP-1": 4}
    assert _level(conn, product, wh) == (4, 0)


def test_write_off_stock(conn, world: World) -> None:
    """Managers write off damaged, expired or lost stock (FEFO or a named lot); other reasons,
    staff, reserved stock and bad numbers are refused."""
    product = _product(conn, world)
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    wh = world.a.locations["WH1"]
    stock(conn, staff, product, wh, 4, lot_number="A", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 6)
    level = call(conn, manager, WRITE_OFF, (product, wh, 3, "damaged", None))[0][0]
    assert (level["on_hand"], level["reserved"]) == (7, 0)
    assert _lots(conn, product, wh) == {"A": 1}
    moves = conn.execute(
        "select kind, quantity, reason, wac_value from public.stock_movements"
        " where product_id = %s and kind = 'write_off'",
        (product,),
    ).fetchall()
    assert moves == [("write_off", -3, "damaged", -12)]

    assert _refused(conn, manager, WRITE_OFF, (product, wh, 1, "stolen", None)) == (
        "PT422",
        "validation_failed",
        "reason",
    )
    assert _refused(conn, staff, WRITE_OFF, (product, wh, 1, "lost", None))[:2] == (
        "PT403",
        "forbidden",
    )
    assert _refused(conn, manager, WRITE_OFF, (product, wh, 0.5, "lost", None)) == (
        "PT422",
        "validation_failed",
        "quantity",
    )
    assert _refused(conn, manager, WRITE_OFF, (product, wh, "NaN", "lost", None)) == (
        "PT422",
        "validation_failed",
        "quantity",
    )
    assert _refused(conn, manager, WRITE_OFF, (product, wh, 1, "lost", "NOPE"))[:2] == (
        "PT404",
        "not_found",
    )
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((product, 6))),
    )[0][0]
    assert _refused(conn, manager, WRITE_OFF, (product, wh, 2, "lost", None))[:2] == (
        "PT409",
        "insufficient_stock",
    )
    assert _refused(conn, manager, WRITE_OFF, (product, wh, 2, "lost", "A"))[:2] == (
        "PT409",
        "insufficient_stock",
    )
    call(conn, manager, WRITE_OFF, (product, wh, 1, "lost", "A"))
    assert _level(conn, product, wh) == (6, 6)
    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
    outsider = world.b.users["owner"]
    assert _refused(conn, outsider, WRITE_OFF, (product, wh, 1, "lost", None))[:2] == (
        "PT404",
        "not_found",
    )


def _mine(entries: list[dict], *products: str) -> dict:
    """{(product, lot): quantity} of write_off_expired entries for the given products."""
    return {
        (x["product_id"], x["lot_number"]): x["quantity"]
        for x in entries
        if x["product_id"] in products
    }


def test_write_off_expired_takes_every_expired_lot_in_one_call(conn, world: World) -> None:
    """Per location, then across the organization; stock that confirmed orders reserve is held
    back until they let go of it."""
    p, q = _product(conn, world), _product(conn, world)
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    stock(conn, staff, p, wh, 5, lot_number="P-OLD", expiry_date="2030-01-01")
    stock(conn, staff, p, wh, 5, lot_number="P-NEW", expiry_date="2032-01-01")
    stock(conn, staff, q, wh, 4, lot_number="Q-OLD", expiry_date="2030-01-01")
    stock(conn, staff, q, st, 3, lot_number="Q-ST", expiry_date="2030-01-01")
    # A sale reserves 6 of p while everything is still good.
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((p, 8))),
    )[0][0]
    for product, lot in ((p, "P-OLD"), (q, "Q-OLD"), (q, "Q-ST")):
        _expire(conn, product, lot)

    assert _refused(conn, staff, EXPIRED, (wh,))[:2] == ("PT403", "forbidden")
    done = call(conn, manager, EXPIRED, (wh,))[0][0]
    # Other tests of the session may leave expired lots in organization a: look at p and q.
    written = _mine(done["written_off"], p, q)
    # p: on_hand 10, reserved 8: only 2 of P-OLD may go; 3 are held for the order.
    assert written == {(p, "P-OLD"): 2, (q, "Q-OLD"): 4}
    assert _mine(done["held_for_orders"], p, q) == {(p, "P-OLD"): 3}
    assert done["quantity"] == sum(x["quantity"] for x in done["written_off"])
    assert _lots(conn, q, st) == {"Q-ST": 3}

    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
    everywhere = call(conn, manager, "select public.write_off_expired()")[0][0]
    assert _mine(everywhere["written_off"], p, q) == {(p, "P-OLD"): 3, (q, "Q-ST"): 3}
    assert _mine(everywhere["held_for_orders"], p, q) == {}
    assert _lots(conn, p, wh) == {"P-OLD": 0, "P-NEW": 5}
    reasons = conn.execute(
        "select distinct reason from public.stock_movements where kind = 'write_off'"
        " and product_id in (%s, %s)",
        (p, q),
    ).fetchall()
    assert reasons == [("expired",)]
    again = call(conn, manager, EXPIRED, (wh,))[0][0]
    assert _mine(again["written_off"], p, q) == {}
    assert _refused(conn, world.b.users["owner"], EXPIRED, (wh,))[:2] == ("PT404", "not_found")
