"""Analytics read the costing facts: valuation, cost of goods sold, turnover, dashboard.

The hand-computed case of tests/sql/test_costing.py, through the reports: catalog cost 4.00;
receive 10 @ 5.00 and 10 @ 7.00; sell 15 @ 20.00. Weighted average: the sale cost 90.00 and the
5 left are worth 30.00. FIFO: the sale took 10 @ 5 + 5 @ 7 = 85.00 and left 5 @ 7 = 35.00.
(The catalog cost would say 60.00 and 20.00.) Each test uses an organization of its own, so that
organization-wide totals are exactly the scenario's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import call, error_of, new_user


@dataclass
class Shop:
    """A fresh organization: one warehouse, its owner, a manager and a staff member."""

    id: str
    owner: str
    manager: str
    staff: str
    wh: str
    st: str


@pytest.fixture
def shop(conn) -> Shop:
    """A new organization with two locations and no products."""
    owner = new_user(conn)
    conn.commit()
    slug = f"cost-{uuid.uuid4().hex[:8]}"
    org = call(conn, owner, "select public.create_organization('Costing', %s)", (slug,))[0][0]["id"]
    users = {}
    for role in ("manager", "staff"):
        users[role] = new_user(conn)
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role) values (%s, %s, %s)",
            (users[role], org, role),
        )
    locations = [
        str(
            conn.execute(
                "insert into public.locations (organization_id, name, code, kind)"
                " values (%s, %s, %s, 'warehouse') returning id",
                (org, f"Costing {code}", code),
            ).fetchone()[0]
        )
        for code in ("WH1", "ST1")
    ]
    conn.commit()
    return Shop(org, owner, users["manager"], users["staff"], *locations)


def _product(conn, shop: Shop, cost=4, category: str | None = None) -> str:
    """A new product of the shop: price 20.00, catalog cost `cost`, no stock."""
    pid = str(
        conn.execute(
            "insert into public.products (organization_id, sku, name, price, unit_cost,"
            " category_id) values (%s, %s, 'Costed', 20, %s, %s) returning id",
            (shop.id, f"C-{uuid.uuid4().hex[:8]}", cost, category),
        ).fetchone()[0]
    )
    conn.commit()
    return pid


def _receive(conn, shop: Shop, product: str, location: str, qty, price) -> None:
    """A purchase order for qty @ price, confirmed and received, as the manager."""
    order = call(
        conn,
        shop.manager,
        "select public.create_order('purchase', %s, %s)",
        (location, Jsonb([{"product_id": product, "quantity": qty, "unit_price": price}])),
    )[0][0]
    call(conn, shop.manager, "select public.update_order_status(%s, 'received')", (order["id"],))


def _sell(conn, shop: Shop, product: str, location: str, qty) -> str:
    """A sales order for qty (at the product's price), confirmed and fulfilled; returns its id."""
    order = call(
        conn,
        shop.staff,
        "select public.create_order('sales', %s, %s)",
        (location, Jsonb([{"product_id": product, "quantity": qty}])),
    )[0][0]
    call(conn, shop.staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    return order["id"]


def _scenario(conn, shop: Shop) -> str:
    """10 @ 5, 10 @ 7 received at WH1, 15 sold there; returns the product."""
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    _receive(conn, shop, product, shop.wh, 10, "7.00")
    _sell(conn, shop, product, shop.wh, 15)
    return product


def _report(conn, shop: Shop, sql: str, params=()) -> dict:
    """One analytics RPC as the shop's owner."""
    return call(conn, shop.owner, sql, params)[0][0]


def _refresh(conn) -> None:
    """Refresh the analytics views (as the table owner, as pg_cron does)."""
    conn.execute("select private.refresh_analytics_views(false)")
    conn.commit()


def _set_method(conn, shop: Shop, method: str) -> None:
    """Set the organization's costing_method (as the superuser, like a settings PUT)."""
    conn.execute(
        "insert into public.settings as s (organization_id, value)"
        " values (%(o)s, jsonb_build_object('costing_method', %(m)s::text))"
        " on conflict (organization_id) do update"
        " set value = s.value || jsonb_build_object('costing_method', %(m)s::text)",
        {"o": shop.id, "m": method},
    )
    conn.commit()


def test_valuation_by_both_methods(conn, shop: Shop) -> None:
    """What is left: 30.00 at weighted average, 35.00 at FIFO, per location and category."""
    category = str(
        conn.execute(
            "insert into public.categories (organization_id, name) values (%s, 'Tools')"
            " returning id",
            (shop.id,),
        ).fetchone()[0]
    )
    conn.commit()
    product = _product(conn, shop, category=category)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    _receive(conn, shop, product, shop.wh, 10, "7.00")
    _sell(conn, shop, product, shop.wh, 15)
    before = _report(conn, shop, "select public.stock_valuation()")
    _refresh(conn)

    wac = _report(conn, shop, "select public.stock_valuation()")
    assert wac["method"] == "weighted_average"
    assert (Decimal(str(wac["units"])), Decimal(str(wac["value"]))) == (5, Decimal("30.00"))
    assert [(c["category_id"], Decimal(str(c["value"]))) for c in wac["by_category"]] == [
        (category, Decimal("30.00"))
    ]
    assert [(x["location_id"], Decimal(str(x["value"]))) for x in wac["by_location"]] == [
        (shop.wh, Decimal("30.00"))
    ]
    fifo = _report(conn, shop, "select public.stock_valuation('fifo')")
    assert fifo["method"] == "fifo"
    assert (Decimal(str(fifo["units"])), Decimal(str(fifo["value"]))) == (5, Decimal("35.00"))
    assert [(x["location_id"], Decimal(str(x["value"]))) for x in fifo["by_location"]] == [
        (shop.wh, Decimal("35.00"))
    ]
    assert [Decimal(str(c["value"])) for c in fifo["by_category"]] == [Decimal("35.00")]
    # As of the refresh: before it, the scenario's stock was not in the views yet.
    assert Decimal(str(before["value"])) == 0
    (refreshed,) = conn.execute(
        "select refreshed_at from private.analytics_refreshes where view = 'private.stock_by_group'"
    ).fetchone()
    conn.commit()
    assert dt.datetime.fromisoformat(wac["as_of"]) <= refreshed


def test_fifo_by_location_follows_transfers(conn, shop: Shop) -> None:
    """A transfer carries its layers: FIFO per location is exact; WAC per location = units x avg."""
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    _receive(conn, shop, product, shop.wh, 10, "7.00")
    call(
        conn,
        shop.staff,
        "select public.transfer_stock(%s, %s, %s, 12)",
        (product, shop.wh, shop.st),
    )
    _refresh(conn)
    fifo = _report(conn, shop, "select public.stock_valuation('fifo')")
    by_location = {x["location_id"]: Decimal(str(x["value"])) for x in fifo["by_location"]}
    # ST1 got 10 @ 5 + 2 @ 7 = 64.00; WH1 keeps 8 @ 7 = 56.00.
    assert by_location == {shop.st: Decimal("64.00"), shop.wh: Decimal("56.00")}
    wac = _report(conn, shop, "select public.stock_valuation('weighted_average')")
    by_location = {x["location_id"]: Decimal(str(x["value"])) for x in wac["by_location"]}
    assert by_location == {shop.st: Decimal("72.00"), shop.wh: Decimal("48.00")}
    assert Decimal(str(wac["value"])) == Decimal(str(fifo["value"])) == Decimal("120.00")


def test_cost_of_goods_sold_by_both_methods(conn, shop: Shop) -> None:
    """sales_analytics: revenue 300.00, COGS 90.00 (WAC) and 85.00 (FIFO) after a refresh."""
    _scenario(conn, shop)
    _refresh(conn)
    sales = _report(conn, shop, "select public.sales_analytics(current_date - 1, current_date)")
    totals = sales["totals"]
    assert sales["costing_method"] == "weighted_average"
    assert Decimal(str(totals["revenue"])) == Decimal("300.00")
    assert Decimal(str(totals["cogs_wac"])) == Decimal("90.00")
    assert Decimal(str(totals["cogs_fifo"])) == Decimal("85.00")
    assert Decimal(str(totals["cogs"])) == Decimal("90.00")
    assert Decimal(str(totals["gross_margin"])) == Decimal("210.00")
    (row,) = [s for s in sales["series"] if s["units"]]
    assert (Decimal(str(row["cogs_wac"])), Decimal(str(row["cogs_fifo"]))) == (90, 85)
    for group_by in ("product", "location", "category"):
        grouped = _report(
            conn,
            shop,
            "select public.sales_analytics(current_date - 1, current_date, 'day', %s)",
            (group_by,),
        )
        assert Decimal(str(grouped["totals"]["cogs_fifo"])) == Decimal("85.00"), group_by


def test_customer_return_gives_its_cost_back(conn, shop: Shop) -> None:
    """2 of the 15 come back at the cost they left with, per unit of the sale: WAC 2 @ 6.00,
    COGS 90 - 12 = 78.00; FIFO 2 @ 85 / 15 = 5.6667 (return_order's rule), 85 - 11.3334 = 73.67."""
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    _receive(conn, shop, product, shop.wh, 10, "7.00")
    order = _sell(conn, shop, product, shop.wh, 15)
    call(
        conn,
        shop.staff,
        "select public.return_order(%s, %s)",
        (order, Jsonb([{"product_id": product, "quantity": 2}])),
    )
    _refresh(conn)
    totals = _report(conn, shop, "select public.sales_analytics(current_date - 1, current_date)")[
        "totals"
    ]
    assert Decimal(str(totals["cogs_wac"])) == Decimal("78.00")
    assert Decimal(str(totals["cogs_fifo"])) == Decimal("73.67")
    # Units and revenue stay those of the order: NIMBUS records no refund.
    assert Decimal(str(totals["revenue"])) == Decimal("300.00")


def test_organization_setting_chooses_the_method(conn, shop: Shop) -> None:
    """costing_method fifo: valuation, sales margin, dashboard and turnover all use FIFO."""
    _scenario(conn, shop)
    _set_method(conn, shop, "fifo")
    _refresh(conn)
    valuation = _report(conn, shop, "select public.stock_valuation()")
    assert valuation["method"] == "fifo" and Decimal(str(valuation["value"])) == Decimal("35.00")
    explicit = _report(conn, shop, "select public.stock_valuation('weighted_average')")
    assert Decimal(str(explicit["value"])) == Decimal("30.00")
    sales = _report(conn, shop, "select public.sales_analytics(current_date - 1, current_date)")
    assert sales["costing_method"] == "fifo"
    assert Decimal(str(sales["totals"]["cogs"])) == Decimal("85.00")
    assert Decimal(str(sales["totals"]["gross_margin"])) == Decimal("215.00")
    dash = _report(conn, shop, "select public.dashboard()")
    assert dash["costing_method"] == "fifo"
    assert Decimal(str(dash["stock_value"])) == Decimal("35.00")
    assert Decimal(str(dash["cogs_30d"])) == Decimal("85.00")
    turnover = _report(
        conn, shop, "select public.inventory_turnover(current_date - 1, current_date)"
    )
    assert turnover["costing_method"] == "fifo"
    assert Decimal(str(turnover["cogs"])) == Decimal("85.00")
    assert Decimal(str(turnover["closing_inventory_value"])) == Decimal("35.00")
    # Nothing before today: the opening value is 0, the average that of the two day ends.
    assert Decimal(str(turnover["opening_inventory_value"])) == 0
    assert Decimal(str(turnover["average_inventory_value"])) == Decimal("17.50")

    _set_method(conn, shop, "weighted_average")
    dash = _report(conn, shop, "select public.dashboard()")
    assert Decimal(str(dash["stock_value"])) == Decimal("30.00")
    assert Decimal(str(dash["cogs_30d"])) == Decimal("90.00")
    turnover = _report(
        conn, shop, "select public.inventory_turnover(current_date - 1, current_date)"
    )
    assert Decimal(str(turnover["cogs"])) == Decimal("90.00")
    assert Decimal(str(turnover["closing_inventory_value"])) == Decimal("30.00")


def test_product_without_catalog_cost_is_valued_at_its_receipts(conn, shop: Shop) -> None:
    """No catalog cost, 16 received @ 4.00: worth 64.00 by both methods, on the dashboard too."""
    product = _product(conn, shop, cost=0)
    _receive(conn, shop, product, shop.wh, 16, "4.00")
    _refresh(conn)
    for method in ("weighted_average", "fifo"):
        valuation = _report(conn, shop, "select public.stock_valuation(%s)", (method,))
        assert Decimal(str(valuation["value"])) == Decimal("64.00"), method
    assert Decimal(str(_report(conn, shop, "select public.dashboard()")["stock_value"])) == 64


def test_catalog_cost_edits_do_not_move_the_reports(conn, shop: Shop) -> None:
    """Changing products.unit_cost (the catalog cost) changes no valuation and no COGS."""
    product = _scenario(conn, shop)
    _refresh(conn)
    before = _report(conn, shop, "select public.sales_analytics(current_date - 1, current_date)")
    conn.execute("update public.products set unit_cost = 100 where id = %s", (product,))
    conn.commit()
    _refresh(conn)
    after = _report(conn, shop, "select public.sales_analytics(current_date - 1, current_date)")
    assert after["totals"] == before["totals"]
    assert Decimal(str(_report(conn, shop, "select public.stock_valuation()")["value"])) == 30
    assert Decimal(str(_report(conn, shop, "select public.dashboard()")["stock_value"])) == 30


@pytest.mark.parametrize("bad", ["1.23456", "10000000000", "NaN"])
def test_catalog_cost_is_refused_not_rounded(conn, shop: Shop, bad: str) -> None:
    """products.unit_cost keeps at most 4 decimals, below 1e10, finite: else a check violation."""
    product = _product(conn, shop)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "update public.products set unit_cost = %s::numeric where id = %s", (bad, product)
        )
    conn.rollback()
    conn.execute("update public.products set unit_cost = 1.2345 where id = %s", (product,))
    (kept,) = conn.execute(
        "select unit_cost from public.products where id = %s", (product,)
    ).fetchone()
    assert kept == Decimal("1.2345")


def test_unknown_method_is_400(conn, shop: Shop) -> None:
    """An explicit method other than weighted_average / fifo: PT400 validation_failed."""
    with pytest.raises(psycopg.Error) as caught:
        _report(conn, shop, "select public.stock_valuation('lifo')")
    assert error_of(caught.value) == ("PT400", "validation_failed")
