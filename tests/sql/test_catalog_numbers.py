"""Catalog numbers: prices and costs are finite and never silently rounded, on every path."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, call, error_of


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "NaN"),
        ("price", "Infinity"),
        ("price", "1.234"),
        ("price", "1e3"),
        ("price", -1),
        ("unit_cost", "-Infinity"),
        ("unit_cost", "0.00001"),
        ("low_stock_threshold", 1.5),
        ("reorder_point", "NaN"),
    ],
)
def test_bulk_upsert_refuses_non_finite_and_over_precise_numbers(
    conn, world: World, field: str, value
) -> None:
    """bulk_upsert_products names the row and field of a bad number (PT422) and writes nothing."""
    sku = f"N-{uuid.uuid4().hex[:8]}"
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["manager"],
            "select public.bulk_upsert_products(%s)",
            (Jsonb([{"sku": sku, "name": "Numbers", field: value}]),),
        )
    assert error_of(caught.value) == ("PT422", "validation_failed")
    problems = json.loads(caught.value.diag.message_detail)
    assert problems[0]["index"] == 0
    assert [e["field"] for e in problems[0]["errors"]] == [field]
    assert (
        conn.execute("select count(*) from public.products where sku = %s", (sku,)).fetchone()[0]
        == 0
    )


def test_bulk_upsert_takes_numeric_strings_as_csv_sends_them(conn, world: World) -> None:
    """A CSV import sends "9.99": accepted exactly, as a JSON number would be."""
    sku = f"N-{uuid.uuid4().hex[:8]}"
    call(
        conn,
        world.a.users["manager"],
        "select public.bulk_upsert_products(%s)",
        (Jsonb([{"sku": sku, "name": "Numbers", "price": "9.99", "unit_cost": "1.2345"}]),),
    )
    row = conn.execute(
        "select price::text, unit_cost::text from public.products where sku = %s", (sku,)
    ).fetchone()
    assert row == ("9.99", "1.2345")


@pytest.mark.parametrize("price", ["NaN", "9.999", "10000000000"])
def test_price_written_directly_is_never_rounded_or_nan(conn, world: World, price: str) -> None:
    """A PATCH through PostgREST (here: the same UPDATE as a manager) cannot store a bad price."""
    product = world.a.products["P1"]
    with pytest.raises(psycopg.Error) as caught:
        call(
            conn,
            world.a.users["manager"],
            "update public.products set price = %s::numeric where id = %s",
            (price, product),
        )
    assert caught.value.sqlstate == "23514"
