"""Costing: the moving weighted average and FIFO layers, figures computed by hand.

Catalog cost 4.00; receive 10 @ 5.00 and 10 @ 7.00; sell 15. Weighted average: 20 units worth
120.00, average 6.00, so the sale costs 90.00 and the 5 left are worth 30.00. FIFO: the sale
takes 10 @ 5 + 5 @ 7 = 85.00 and leaves 5 @ 7 = 35.00.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, call, error_of, make_product


def _product(conn, world: World, cost=4) -> str:
    """A new product of organization a with catalog cost `cost` and no stock."""
    pid = make_product(conn, world.a.id, f"C-{uuid.uuid4().hex[:8]}", price=20)
    conn.execute("update public.products set unit_cost = %s where id = %s", (cost, pid))
    conn.commit()
    return pid


def _receive(conn, world: World, product: str, location: str, qty, price) -> None:
    """A purchase order for qty @ price, confirmed and received, as the manager."""
    manager = world.a.users["manager"]
    order = call(
        conn,
        manager,
        "select public.create_order('purchase', %s, %s)",
        (location, Jsonb([{"product_id": product, "quantity": qty, "unit_price": price}])),
    )[0][0]
    call(conn, manager, "select public.update_order_status(%s, 'received')", (order["id"],))


def _sell(conn, world: World, product: str, location: str, qty) -> str:
    """A sales order for qty, confirmed and fulfilled, as staff; returns its id."""
    staff = world.a.users["staff"]
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s)",
        (location, Jsonb([{"product_id": product, "quantity": qty}])),
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    return order["id"]


def _values(conn, product: str, where: str = "true") -> tuple[Decimal, Decimal]:
    """(sum of wac_value, sum of fifo_value) of the product's movements matching `where`."""
    return conn.execute(
        f"select coalesce(sum(wac_value), 0), coalesce(sum(fifo_value), 0)"
        f" from public.stock_movements where product_id = %s and ({where})",
        (product,),
    ).fetchone()


def _left(conn, product: str) -> tuple[Decimal, Decimal, Decimal]:
    """(units, weighted-average value, FIFO layer value) of what the product has left."""
    units, wac = conn.execute(
        "select quantity, value from private.product_costs where product_id = %s", (product,)
    ).fetchone()
    fifo = conn.execute(
        "select coalesce(sum(remaining_value), 0) from private.cost_layers where product_id = %s",
        (product,),
    ).fetchone()[0]
    return units, wac, fifo


def test_receipts_move_the_average_and_sales_record_their_cost(conn, world: World) -> None:
    """10 @ 5 + 10 @ 7, sell 15: cost of goods 90.00 (WAC) / 85.00 (FIFO), left 30.00 / 35.00."""
    wh = world.a.locations["WH1"]
    product = _product(conn, world)
    _receive(conn, world, product, wh, 10, "5.00")
    _receive(conn, world, product, wh, 10, "7.00")
    assert _left(conn, product) == (20, Decimal("120.0000"), Decimal("120.0000"))
    order = _sell(conn, world, product, wh, 15)

    assert _values(conn, product, "kind = 'sale'") == (Decimal("-90.0000"), Decimal("-85.0000"))
    assert _left(conn, product) == (5, Decimal("30.0000"), Decimal("35.0000"))
    line_cost = conn.execute(
        "select unit_cost from public.order_items where order_id = %s", (order,)
    ).fetchone()[0]
    assert line_cost == Decimal("6.0000")
    # The ledger holds the facts: in minus out is what is left, by both methods.
    assert _values(conn, product) == (Decimal("30.0000"), Decimal("35.0000"))


def test_product_without_catalog_cost_is_valued_at_its_receipts(conn, world: World) -> None:
    """A product created with no cost and 16 received @ 4.00 is worth 64.00, not 0.00."""
    wh = world.a.locations["WH1"]
    product = _product(conn, world, cost=0)
    _receive(conn, world, product, wh, 16, "4.00")
    assert _left(conn, product) == (16, Decimal("64.0000"), Decimal("64.0000"))


def test_transfer_return_and_write_off_by_both_methods(conn, world: World) -> None:
    """Receive 10 @ 5, 10 @ 7 at WH1; move 12 to ST1; sell 5 there; 2 come back; write off 3.

    WAC (one average per product): 120 / 20 = 6.00 throughout; the sale costs 30.00, the return
    brings back 2 @ 6.00 = 12.00, the write-off takes 3 @ 6.00 = 18.00: 14 units worth 84.00.
    FIFO: the transfer carries 10 @ 5 and 2 @ 7 to ST1; the sale there takes 5 @ 5 = 25.00, the
    return comes back @ 5.00 = 10.00; the write-off at WH1 takes 3 @ 7 = 21.00. Left: WH1 5 @ 7
    = 35.00, ST1 5 @ 5 + 2 @ 7 + 2 @ 5 = 49.00: 84.00.
    """
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    product = _product(conn, world)
    _receive(conn, world, product, wh, 10, "5.00")
    _receive(conn, world, product, wh, 10, "7.00")
    call(conn, staff, "select public.transfer_stock(%s, %s, %s, 12)", (product, wh, st))
    assert _values(conn, product, "kind like 'transfer%%'") == (0, 0)
    transferred = conn.execute(
        "select coalesce(sum(remaining_value), 0) from private.cost_layers"
        " where product_id = %s and location_id = %s",
        (product, st),
    ).fetchone()[0]
    assert transferred == Decimal("64.0000")

    order = _sell(conn, world, product, st, 5)
    assert _values(conn, product, "kind = 'sale'") == (Decimal("-30.0000"), Decimal("-25.0000"))
    call(
        conn,
        staff,
        "select public.return_order(%s, %s)",
        (order, Jsonb([{"product_id": product, "quantity": 2}])),
    )
    assert _values(conn, product, "kind = 'return'") == (Decimal("12.0000"), Decimal("10.0000"))
    call(
        conn,
        manager,
        "select public.write_off_stock(%s, %s, 3, 'damaged')",
        (product, wh),
    )
    assert _values(conn, product, "kind = 'write_off'") == (
        Decimal("-18.0000"),
        Decimal("-21.0000"),
    )
    assert _left(conn, product) == (14, Decimal("84.0000"), Decimal("84.0000"))
    by_location = dict(
        conn.execute(
            "select location_id::text, sum(remaining_value) from private.cost_layers"
            " where product_id = %s group by location_id",
            (product,),
        ).fetchall()
    )
    assert by_location == {wh: Decimal("35.0000"), st: Decimal("49.0000")}


def test_positive_adjustment_costs_at_average_or_given_cost(conn, world: World) -> None:
    """Found stock comes in at the current average unless the adjustment names a cost."""
    wh = world.a.locations["WH1"]
    staff = world.a.users["staff"]
    product = _product(conn, world)
    _receive(conn, world, product, wh, 10, "5.00")
    call(conn, staff, "select public.adjust_stock(%s, %s, 10, 'found')", (product, wh))
    assert _left(conn, product) == (20, Decimal("100.0000"), Decimal("100.0000"))
    call(
        conn,
        staff,
        "select public.adjust_stock(%s, %s, 5, 'found', unit_cost => 11)",
        (product, wh),
    )
    assert _left(conn, product) == (25, Decimal("155.0000"), Decimal("155.0000"))


def test_last_unit_out_takes_exactly_the_value_left(conn, world: World) -> None:
    """Three units worth 10.00 leave one at a time: 3.3333 + 3.3333 + 3.3334, nothing stranded."""
    wh = world.a.locations["WH1"]
    staff = world.a.users["staff"]
    product = _product(conn, world)
    call(
        conn,
        staff,
        "select public.adjust_stock(%s, %s, 3, 'opening', unit_cost => 3.3333)",
        (product, wh),
    )
    for _ in range(3):
        call(conn, staff, "select public.adjust_stock(%s, %s, -1, 'used')", (product, wh))
    assert _left(conn, product) == (0, 0, 0)
    assert _values(conn, product) == (0, 0)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-1", "1.23456"])
def test_adjustment_cost_is_checked(conn, world: World, bad: str) -> None:
    """unit_cost of an adjustment: finite, not negative, at most 4 decimals (PT422 unit_cost)."""
    product = _product(conn, world)
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.adjust_stock(%s, %s, 1, 'found', unit_cost => %s::numeric)",
            (product, world.a.locations["WH1"], bad),
        )
    assert error_of(caught.value) == ("PT422", "validation_failed")
    assert caught.value.diag.message_detail == "unit_cost"
