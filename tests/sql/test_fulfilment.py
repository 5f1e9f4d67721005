"""Partial fulfilment and receipt, line by line and lot by lot: backorders keep their reservation,
closing short releases it, over-receipt is bounded by the tolerance setting, and order numbers
are checked where they enter (NaN, Infinity, strings, too many decimals: PT422 naming the field).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, acting, call, error_of, items, make_product, stock

FULFIL = "select public.fulfil_order(%s, %s)"
RECEIVE = "select public.receive_order(%s, %s)"
CLOSE = "select public.close_order(%s, %s)"


def _product(conn, world: World, **kwargs) -> str:
    """A new product of organization a (unit each, price 10, catalog cost 5), no stock."""
    product = make_product(conn, world.a.id, f"F-{uuid.uuid4().hex[:10]}", **kwargs)
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


def _sale(conn, world: World, product: str, qty) -> dict:
    """A confirmed sales order of qty units at WH1, as staff."""
    return call(
        conn,
        world.a.users["staff"],
        "select public.create_order('sales', %s, %s)",
        (world.a.locations["WH1"], items((product, qty))),
    )[0][0]


def _purchase(conn, world: World, product: str, qty, price) -> dict:
    """A confirmed purchase order of qty @ price at WH1, as the manager."""
    return call(
        conn,
        world.a.users["manager"],
        "select public.create_order('purchase', %s, %s)",
        (
            world.a.locations["WH1"],
            Jsonb([{"product_id": product, "quantity": qty, "unit_price": price}]),
        ),
    )[0][0]


def _tolerance(conn, world: World, value) -> None:
    """Set (or, with None, remove) the organization's over_receipt_tolerance setting."""
    if value is None:
        conn.execute(
            "update public.settings set value = value - 'over_receipt_tolerance'"
            " where organization_id = %s",
            (world.a.id,),
        )
    else:
        conn.execute(
            "update public.settings set value = value || jsonb_build_object("
            "'over_receipt_tolerance', %s::numeric) where organization_id = %s",
            (value, world.a.id),
        )
    conn.commit()


def test_partial_fulfilment_lot_by_lot_keeps_the_backorder_reserved(conn, world: World) -> None:
    """Fulfil 5 of 12 from named lots: partially_fulfilled, 7 still reserved; then the rest FEFO
    among usable lots and untracked stock: fulfilled, nothing reserved, cost per unit recorded."""
    product = _product(conn, world)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 5, lot_number="A", expiry_date="2030-01-01")
    stock(conn, staff, product, wh, 5, lot_number="B", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 5)
    order = _sale(conn, world, product, 12)
    assert _level(conn, product, wh) == (15, 12)

    lines = [
        {"product_id": product, "quantity": 3, "lot_number": "B"},
        {"product_id": product, "quantity": "2", "lot_number": "A"},
    ]
    got = call(conn, staff, FULFIL, (order["id"], Jsonb(lines)))[0][0]
    assert got["status"] == "partially_fulfilled" and got["completed_at"] is None
    assert got["items"][0]["done_quantity"] == 5
    assert _level(conn, product, wh) == (10, 7)
    assert _lots(conn, product, wh) == {"A": 3, "B": 2}

    done = call(conn, staff, FULFIL, (order["id"], Jsonb([{"product_id": product, "quantity": 7}])))
    done = done[0][0]
    assert done["status"] == "fulfilled" and done["completed_at"] is not None
    assert done["items"][0]["done_quantity"] == 12
    assert _level(conn, product, wh) == (3, 0)
    assert _lots(conn, product, wh) == {"A": 0, "B": 0}
    moves = conn.execute(
        "select l.lot_number, m.quantity from public.stock_movements as m"
        " left join public.lots as l on l.id = m.lot_id"
        " where m.order_id = %s and m.kind = 'sale' order by m.id",
        (order["id"],),
    ).fetchall()
    assert moves == [("B", -3), ("A", -2), ("A", -3), ("B", -2), (None, -2)]
    # Stock adjusted in at no other cost: the catalog cost (5) is what every unit took out.
    assert done["items"][0]["unit_cost"] == 5


def test_close_short_releases_the_reservation(conn, world: World) -> None:
    """A partially fulfilled order closed short: fulfilled with its reason, the line's shortfall
    recorded, its reservation released; a confirmed order cannot be closed (cancel it)."""
    product = _product(conn, world)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 20)
    order = _sale(conn, world, product, 10)
    assert _refused(conn, staff, CLOSE, (order["id"], "no more"))[:2] == (
        "PT409",
        "invalid_transition",
    )
    call(conn, staff, FULFIL, (order["id"], Jsonb([{"product_id": product, "quantity": 4}])))
    assert _level(conn, product, wh) == (16, 6)
    assert _refused(conn, staff, CLOSE, (order["id"], " "))[:3] == (
        "PT422",
        "validation_failed",
        "reason",
    )
    assert _refused(
        conn, staff, "select public.update_order_status(%s, 'cancelled')", (order["id"],)
    )[:2] == ("PT409", "invalid_transition")

    closed = call(conn, staff, CLOSE, (order["id"], "customer took the rest elsewhere"))[0][0]
    assert closed["status"] == "fulfilled" and closed["completed_at"] is not None
    assert closed["closed_reason"] == "customer took the rest elsewhere"
    line = closed["items"][0]
    assert (line["done_quantity"], line["short_quantity"]) == (4, 6)
    assert _level(conn, product, wh) == (16, 0)
    again = _refused(
        conn, staff, FULFIL, (order["id"], Jsonb([{"product_id": product, "quantity": 1}]))
    )
    assert again[:2] == ("PT409", "invalid_transition")


def test_update_order_status_fulfils_and_receives_what_is_left(conn, world: World) -> None:
    """The whole-order status moves still work on partial orders: they move the rest."""
    product = _product(conn, world)
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 10)
    order = _sale(conn, world, product, 6)
    call(conn, staff, FULFIL, (order["id"], Jsonb([{"product_id": product, "quantity": 2}])))
    done = call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))[
        0
    ][0]
    assert done["status"] == "fulfilled" and done["items"][0]["done_quantity"] == 6
    assert _level(conn, product, wh) == (4, 0)

    po = _purchase(conn, world, product, 8, "3.00")
    call(conn, manager, RECEIVE, (po["id"], Jsonb([{"product_id": product, "quantity": 3}])))
    got = call(
        conn,
        manager,
        "select public.update_order_status(%s, 'received', %s)",
        (po["id"], Jsonb([{"product_id": product, "lot_number": "REST", "expiry_date": None}])),
    )[0][0]
    assert got["status"] == "received" and got["items"][0]["done_quantity"] == 8
    assert _lots(conn, product, wh) == {f"PO{po['number']}-1": 3, "REST": 5}
    assert _level(conn, product, wh) == (12, 0)


def test_fulfilment_is_bounded_by_the_order_and_usable_lots(conn, world: World) -> None:
    """More than a line still needs, an expired lot, an unknown lot, a product not on the order,
    a purchase order and a viewer are all refused, and nothing moves."""
    product, other = _product(conn, world), _product(conn, world)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 5, lot_number="OLD", expiry_date="2030-06-01")
    stock(conn, staff, product, wh, 5, lot_number="NEW", expiry_date="2031-06-01")
    order = _sale(conn, world, product, 6)
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute(
        "update public.lots set expiry_date = current_date - 1"
        " where product_id = %s and lot_number = 'OLD'",
        (product,),
    )
    conn.commit()

    def lines(*entries) -> Jsonb:
        return Jsonb([{"product_id": product, "quantity": q, **extra} for q, extra in entries])

    over = _refused(conn, staff, FULFIL, (order["id"], lines((4, {}), (3, {"lot_number": "NEW"}))))
    assert over[:2] == ("PT409", "over_fulfilment")
    assert _refused(conn, staff, FULFIL, (order["id"], lines((1, {"lot_number": "OLD"}))))[:2] == (
        "PT409",
        "lot_unusable",
    )
    assert _refused(conn, staff, FULFIL, (order["id"], lines((1, {"lot_number": "NOPE"}))))[:2] == (
        "PT404",
        "not_found",
    )
    stranger = Jsonb([{"product_id": other, "quantity": 1}])
    assert _refused(conn, staff, FULFIL, (order["id"], stranger))[:3] == (
        "PT422",
        "validation_failed",
        "product_id",
    )
    assert _refused(conn, staff, FULFIL, (order["id"], Jsonb([])))[:2] == (
        "PT422",
        "validation_failed",
    )
    viewer = world.a.users["viewer"]
    assert _refused(conn, viewer, FULFIL, (order["id"], lines((1, {}))))[:2] == (
        "PT403",
        "forbidden",
    )
    outsider = world.b.users["owner"]
    assert _refused(conn, outsider, FULFIL, (order["id"], lines((1, {}))))[:2] == (
        "PT404",
        "not_found",
    )
    # FEFO without a lot skips the expired one: NEW has 5 usable, the order needs 6.
    assert _refused(conn, staff, FULFIL, (order["id"], lines((6, {}))))[:2] == (
        "PT409",
        "insufficient_stock",
    )
    assert _level(conn, product, wh) == (10, 6)
    po = _purchase(conn, world, product, 1, 1)
    assert _refused(conn, world.a.users["manager"], FULFIL, (po["id"], lines((1, {}))))[:2] == (
        "PT409",
        "invalid_transition",
    )
    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order["id"],))
    assert _level(conn, product, wh) == (10, 0)


def test_partial_receipt_lot_by_lot_and_over_receipt_tolerance(conn, world: World) -> None:
    """Receive 4 of 10 into a dated lot at a given cost, then the rest: beyond the ordered
    quantity only within over_receipt_tolerance (default 0: PT409 over_receipt)."""
    product = _product(conn, world)
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    po = _purchase(conn, world, product, 10, "5.00")
    first = [
        {
            "product_id": product,
            "quantity": 4,
            "lot_number": "SUP-1",
            "expiry_date": "2031-03-01",
            "unit_cost": "5.5",
        }
    ]
    got = call(conn, manager, RECEIVE, (po["id"], Jsonb(first)))[0][0]
    assert got["status"] == "partially_received" and got["completed_at"] is None
    assert got["items"][0]["done_quantity"] == 4
    assert _lots(conn, product, wh) == {"SUP-1": 4}
    cost = conn.execute(
        "select unit_cost from public.stock_movements where order_id = %s", (po["id"],)
    ).fetchone()[0]
    assert cost == Decimal("5.5")

    rest = Jsonb([{"product_id": product, "quantity": 7}])
    over = _refused(conn, manager, RECEIVE, (po["id"], rest))
    assert over[:2] == ("PT409", "over_receipt")
    assert _refused(conn, world.a.users["staff"], RECEIVE, (po["id"], rest))[:2] == (
        "PT403",
        "forbidden",
    )
    _tolerance(conn, world, 0.1)
    try:
        assert _refused(
            conn, manager, RECEIVE, (po["id"], Jsonb([{"product_id": product, "quantity": 8}]))
        )[:2] == ("PT409", "over_receipt")
        got = call(conn, manager, RECEIVE, (po["id"], rest))[0][0]
    finally:
        _tolerance(conn, world, None)
    assert got["status"] == "received" and got["completed_at"] is not None
    line = got["items"][0]
    assert line["done_quantity"] == 11
    # Average cost received: (4 x 5.50 + 7 x 5.00) / 11.
    assert Decimal(str(line["unit_cost"])) == Decimal("5.1818")
    assert _lots(conn, product, wh) == {"SUP-1": 4, f"PO{po['number']}-1": 7}
    assert _level(conn, product, wh) == (11, 0)
    again = _refused(
        conn, manager, RECEIVE, (po["id"], Jsonb([{"product_id": product, "quantity": 1}]))
    )
    assert again[:2] == ("PT409", "invalid_transition")


def test_close_a_partially_received_purchase_short(conn, world: World) -> None:
    """A purchase order received in part and closed: received, shortfall recorded."""
    product = _product(conn, world)
    manager = world.a.users["manager"]
    po = _purchase(conn, world, product, 10, 2)
    call(conn, manager, RECEIVE, (po["id"], Jsonb([{"product_id": product, "quantity": 6}])))
    closed = call(conn, manager, CLOSE, (po["id"], "supplier out of stock"))[0][0]
    assert closed["status"] == "received" and closed["closed_reason"] == "supplier out of stock"
    assert closed["items"][0]["short_quantity"] == 4


BAD_ITEMS = [
    ({"unit_price": "NaN"}, "unit_price"),
    ({"unit_price": "Infinity"}, "unit_price"),
    ({"unit_price": "-Infinity"}, "unit_price"),
    ({"unit_price": 1.005}, "unit_price"),
    ({"unit_price": -1}, "unit_price"),
    ({"unit_price": 1e20}, "unit_price"),
    ({"unit_price": True}, "unit_price"),
    ({"quantity": "NaN"}, "quantity"),
    ({"quantity": "Infinity"}, "quantity"),
    ({"quantity": 100000000000}, "quantity"),
    ({"quantity": 1e20}, "quantity"),
    ({"quantity": 0.5}, "quantity"),
    ({"quantity": "1e3"}, "quantity"),
    ({"quantity": -1}, "quantity"),
    ({"quantity": None}, "quantity"),
    ({"product_id": "not-a-uuid"}, "product_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD_ITEMS)
@pytest.mark.parametrize("kind", ["sales", "purchase"])
def test_order_numbers_are_checked_where_they_enter(conn, world: World, change, field, kind):
    """create_order and update_draft_order refuse NaN, infinities, strings that are not plain
    decimals, too many decimals and out-of-range numbers with PT422 naming the field."""
    item = {"product_id": world.a.products["P1"], "quantity": 1} | change
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    create = "select public.create_order(%s, %s, %s)"
    assert _refused(conn, manager, create, (kind, wh, Jsonb([item]))) == (
        "PT422",
        "validation_failed",
        field,
    )
    draft = call(
        conn,
        manager,
        "select public.create_order(%s, %s, %s, status => 'draft') ->> 'id'",
        (kind, wh, items((world.a.products["P1"], 1))),
    )[0][0]
    update = "select public.update_draft_order(%s, %s, %s)"
    assert _refused(conn, manager, update, (draft, wh, Jsonb([item])))[:3] == (
        "PT422",
        "validation_failed",
        field,
    )
    call(conn, manager, "select public.update_order_status(%s, 'cancelled')", (draft,))


def test_decimal_quantities_follow_the_product_unit(conn, world: World) -> None:
    """A product measured in kg takes 3 decimals, one counted in each takes none; a decimal
    string is as good as a JSON number."""
    kilos = _product(conn, world)
    conn.execute("update public.products set unit = 'kg' where id = %s", (kilos,))
    conn.commit()
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    po = call(
        conn,
        manager,
        "select public.create_order('purchase', %s, %s)",
        (wh, Jsonb([{"product_id": kilos, "quantity": "2.125", "unit_price": "3.10"}])),
    )[0][0]
    assert po["items"][0]["quantity"] == 2.125 and po["items"][0]["unit_price"] == 3.1
    too_fine = Jsonb([{"product_id": kilos, "quantity": 0.0005}])
    assert _refused(conn, manager, RECEIVE, (po["id"], too_fine))[:3] == (
        "PT422",
        "validation_failed",
        "quantity",
    )
    bad_cost = Jsonb([{"product_id": kilos, "quantity": 1, "unit_cost": "0.00001"}])
    assert _refused(conn, manager, RECEIVE, (po["id"], bad_cost))[:3] == (
        "PT422",
        "validation_failed",
        "unit_cost",
    )
    nan_cost = Jsonb([{"product_id": kilos, "quantity": 1, "unit_cost": "NaN"}])
    assert _refused(conn, manager, RECEIVE, (po["id"], nan_cost))[:3] == (
        "PT422",
        "validation_failed",
        "unit_cost",
    )
    typo = Jsonb([{"product_id": kilos, "qty": 1}])
    assert _refused(conn, manager, RECEIVE, (po["id"], typo))[:3] == (
        "PT422",
        "validation_failed",
        "qty",
    )
    got = call(
        conn, manager, RECEIVE, (po["id"], Jsonb([{"product_id": kilos, "quantity": 2.125}]))
    )
    assert got[0][0]["status"] == "received"
