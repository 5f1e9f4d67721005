"""Numbers at the boundary (issue 12): the failures the issue lists, reproduced in SQL as staff.

Each bad number is refused with PT422 validation_failed whose detail is the field's name and
whose message names it, before anything is stored or rounded: NaN (which PostgreSQL sorts above
every number, so every availability check passed it), infinities, values beyond 1e11, more
decimals than a quantity keeps (0.0005 used to round to 0.001 in one table and 0 in the other)
and a fraction of a product counted in "each". The invariant query finds a NaN row even though
NaN = NaN is true in PostgreSQL.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, call, error_of, make_product, stock
from tests.support.invariant import violations

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e20", "-1e20", "100000000000"]
TOO_PRECISE = ["0.0005", "-0.0005", "1.0001"]
FRACTION_OF_EACH = ["0.5", "-0.5", "2.25"]


def _refused(exc: psycopg.Error, field: str) -> None:
    """A PT422 validation_failed naming field (detail = the field, message mentions it)."""
    assert error_of(exc) == ("PT422", "validation_failed"), exc
    assert exc.diag.message_detail == field, exc.diag.message_detail
    assert field in (exc.diag.message_primary or ""), exc.diag.message_primary


def _kg_product(conn: psycopg.Connection, world: World, on_hand: int = 0) -> str:
    """A new product of organization a measured in kg (3 decimals), with stock at WH1."""
    product = make_product(conn, world.a.id, f"KG-{uuid.uuid4().hex[:8]}")
    conn.execute("update public.products set unit = 'kg' where id = %s", (product,))
    conn.commit()
    if on_hand:
        stock(conn, world.a.users["manager"], product, world.a.locations["WH1"], on_hand)
    return product


def _on_hand(conn: psycopg.Connection, product: str, location: str):
    row = conn.execute(
        "select on_hand from public.stock_levels where product_id = %s and location_id = %s",
        (product, location),
    ).fetchone()
    conn.commit()
    return row[0] if row else None


@pytest.mark.parametrize("value", NON_FINITE + TOO_PRECISE + FRACTION_OF_EACH + ["0", "-0.0"])
def test_adjust_stock_refuses_bad_quantities(conn, world: World, value: str) -> None:
    """adjust_stock of an "each" product: non-finite, too precise, fractional and zero deltas
    are PT422 naming quantity_delta, and on_hand does not move."""
    product, wh = world.a.products["P1"], world.a.locations["WH1"]
    before = _on_hand(conn, product, wh)
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.adjust_stock(%s, %s, %s::numeric, 'numbers test')",
            (product, wh, value),
        )
    _refused(caught.value, "quantity_delta")
    assert _on_hand(conn, product, wh) == before


@pytest.mark.parametrize("value", ["0.0005", "-0.0005", "NaN", "Infinity"])
def test_adjust_stock_of_kg_keeps_three_decimals(conn, world: World, value: str) -> None:
    """A product measured in kg takes 3 decimals: 0.0005 is refused, not rounded."""
    product = _kg_product(conn, world, on_hand=5)
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.adjust_stock(%s, %s, %s::numeric, 'numbers test')",
            (product, world.a.locations["WH1"], value),
        )
    _refused(caught.value, "quantity_delta")


def test_adjust_stock_of_kg_accepts_three_decimals(conn, world: World) -> None:
    """The control: 0.5 and 0.125 kg are fine and land exactly, in the ledger and on hand."""
    product, wh = _kg_product(conn, world), world.a.locations["WH1"]
    staff = world.a.users["staff"]
    for delta in ("0.5", "0.125", "-0.005"):
        call(
            conn,
            staff,
            "select public.adjust_stock(%s, %s, %s::numeric, 'kg')",
            (product, wh, delta),
        )
    assert str(_on_hand(conn, product, wh)) == "0.620"
    moved = conn.execute(
        "select sum(quantity) from public.stock_movements where product_id = %s", (product,)
    ).fetchone()[0]
    assert str(moved) == "0.620"


@pytest.mark.parametrize("value", NON_FINITE + TOO_PRECISE + FRACTION_OF_EACH + ["0", "-0.0", "-1"])
def test_transfer_stock_refuses_bad_quantities(conn, world: World, value: str) -> None:
    """transfer_stock of an "each" product: PT422 naming quantity, nothing moves."""
    product = world.a.products["P1"]
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    before = (_on_hand(conn, product, wh), _on_hand(conn, product, st))
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.transfer_stock(%s, %s, %s, %s::numeric)",
            (product, wh, st, value),
        )
    _refused(caught.value, "quantity")
    assert (_on_hand(conn, product, wh), _on_hand(conn, product, st)) == before


@pytest.mark.parametrize("value", ["0.0005", "NaN"])
def test_transfer_stock_of_kg_refuses_a_fourth_decimal(conn, world: World, value: str) -> None:
    """Five transfers of 0.0005 kg used to create 0.005 kg from nothing: each is refused."""
    product = _kg_product(conn, world, on_hand=1)
    wh, st = world.a.locations["WH1"], world.a.locations["ST1"]
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["staff"],
            "select public.transfer_stock(%s, %s, %s, %s::numeric)",
            (product, wh, st, value),
        )
    _refused(caught.value, "quantity")
    assert _on_hand(conn, product, wh) == 1


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": "1e5"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": "-Infinity"}, "quantity"),
        ({"quantity": 1e20}, "quantity"),
        ({"quantity": 0.5}, "quantity"),
        ({"quantity": 0.0005}, "quantity"),
        ({"quantity": 1, "unit_price": "NaN"}, "unit_price"),
        ({"quantity": 1, "unit_price": 1e20}, "unit_price"),
        ({"quantity": 1, "unit_price": 9.999}, "unit_price"),
        ({"quantity": 1, "unit_price": -1}, "unit_price"),
    ],
)
def test_create_order_refuses_bad_numbers(conn, world: World, line: dict, field: str) -> None:
    """create_order: a "NaN" string, an out-of-range or too precise number in an item is PT422
    naming the key; no order is created."""
    staff = world.a.users["staff"]
    before = conn.execute(
        "select count(*) from public.orders where organization_id = %s", (world.a.id,)
    ).fetchone()[0]
    conn.commit()
    item = {"product_id": world.a.products["P1"], **line}
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            staff,
            "select public.create_order('sales', %s, %s)",
            (world.a.locations["WH1"], Jsonb([item])),
        )
    _refused(caught.value, field)
    after = conn.execute(
        "select count(*) from public.orders where organization_id = %s", (world.a.id,)
    ).fetchone()[0]
    assert after == before


def test_invariant_finds_a_forced_nan_row(conn, world: World) -> None:
    """A NaN forced into the ledger and stock level by the superuser (ledger_write on, the new
    finite checks dropped, all rolled back) passes the plain comparison, on_hand = sum of
    movements, because NaN = NaN; the invariant's NaN scan reports both rows."""
    product, wh = world.a.products["P2"], world.a.locations["WH1"]
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    for table, constraint in (
        ("public.stock_movements", "stock_movements_finite"),
        ("public.stock_levels", "stock_levels_finite"),
    ):
        conn.execute(f"alter table {table} drop constraint if exists {constraint}")
    conn.execute(
        "insert into public.stock_movements (organization_id, product_id, location_id, kind,"
        " quantity, reason) values (%s, %s, %s, 'adjustment', 'NaN', 'forced')",
        (world.a.id, product, wh),
    )
    conn.execute(
        "update public.stock_levels set on_hand = 'NaN' where product_id = %s and location_id = %s",
        (product, wh),
    )
    found = violations(conn)
    conn.rollback()
    assert any(v.startswith("non-finite number in public.stock_movements") for v in found), found
    assert any(v.startswith("non-finite number in public.stock_levels") for v in found), found
    assert not any(v.startswith("on_hand ") for v in found), "NaN = NaN: only the scan sees it"
