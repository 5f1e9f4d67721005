"""Replenishment (issue 16, point 1): reorder rules per product and location, several suppliers
per product, open and draft purchase orders as incoming stock, minimum order quantities and
packs, draft purchase orders from the suggestions, tenancy."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from tests.support.domain import Org, _org, call, error_of, items


@pytest.fixture
def shop(database_url: str) -> dict:
    """A fresh organization (users per role, WH1 and ST1, P1-P3 with 100 each at WH1) with
    suppliers S1 (lead 7 days, the catalog supplier of P1-P3) and S2 (lead 3 days)."""
    with psycopg.connect(database_url) as conn:
        org = _org(conn, "r")
        s1, s2 = (
            str(
                conn.execute(
                    "insert into public.suppliers (organization_id, name, lead_time_days)"
                    " values (%s, %s, %s) returning id",
                    (org.id, name, lead),
                ).fetchone()[0]
            )
            for name, lead in (("S1", 7), ("S2", 3))
        )
        conn.execute(
            "update public.products set supplier_id = %s where organization_id = %s",
            (s1, org.id),
        )
        conn.commit()
    return {"org": org, "s1": s1, "s2": s2, "url": database_url}


def conn_for(shop: dict) -> psycopg.Connection:
    """A new superuser connection to the test database."""
    return psycopg.connect(shop["url"])


def suggest(conn, uid: str, *args) -> dict:
    """reorder_suggestions as `uid`."""
    sql = "select public.reorder_suggestions(%s)" if args else "select public.reorder_suggestions()"
    return call(conn, uid, sql, args)[0][0]


def lines(result: dict) -> dict[tuple[str, str], dict]:
    """The proposed lines by (product_id, location_id), each with its order's supplier."""
    return {
        (line["product_id"], po["location_id"]): {**line, "supplier_id": po["supplier_id"]}
        for po in result["purchase_orders"]
        for line in po["lines"]
    }


def rule(conn, org: Org, product: str, location: str, **values) -> None:
    """Insert a reorder rule as the organization's manager, through RLS."""
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    call(
        conn,
        org.users["manager"],
        f"insert into public.reorder_rules (organization_id, product_id, location_id, {cols})"
        f" values (%s, %s, %s, {marks})",
        (org.id, product, location, *values.values()),
    )


def terms(conn, org: Org, supplier: str, product: str, **values) -> None:
    """Insert what a supplier sells of a product, as the organization's manager."""
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    call(
        conn,
        org.users["manager"],
        f"insert into public.supplier_products (organization_id, supplier_id, product_id, {cols})"
        f" values (%s, %s, %s, {marks})",
        (org.id, supplier, product, *values.values()),
    )


def purchase(conn, org: Org, product: str, location: str, qty, status: str) -> dict:
    """A purchase order for one product from S1's organization, as its manager."""
    return call(
        conn,
        org.users["manager"],
        "select public.create_order('purchase', %s, %s, status => %s)",
        (location, items((product, qty)), status),
    )[0][0]


def test_rules_override_the_computed_point(shop) -> None:
    """A min/max rule orders up to max; a reorder-point rule overrides the product's own point."""
    org = shop["org"]
    p1, p2, wh = org.products["P1"], org.products["P2"], org.locations["WH1"]
    with conn_for(shop) as conn:
        assert lines(suggest(conn, org.users["viewer"])) == {}
        rule(conn, org, p1, wh, min_quantity=150, max_quantity=400)
        # P2: a catalog reorder point of 150 (as of the refresh), overridden by a rule at WH1.
        conn.execute("update public.products set reorder_point = 150 where id = %s", (p2,))
        conn.commit()
        conn.execute("select private.refresh_analytics_views(false)")
        conn.commit()
        found = lines(suggest(conn, org.users["viewer"]))
        assert found[(p1, wh)]["rule"] == "min_max"
        assert Decimal(str(found[(p1, wh)]["suggested_quantity"])) == 300
        assert float(found[(p1, wh)]["reorder_point"]) == 150
        assert found[(p2, wh)]["rule"] == "product_reorder_point"
        rule(conn, org, p2, wh, reorder_point=50)
        found = lines(suggest(conn, org.users["viewer"]))
        assert (p2, wh) not in found
        assert (p1, wh) in found


def test_a_draft_purchase_order_stops_double_ordering(shop) -> None:
    """A draft PO for 500 covers the need (listed, not proposed); a smaller one is counted and
    flagged on the line; confirmed orders count as on_order."""
    org = shop["org"]
    p1, wh = org.products["P1"], org.locations["WH1"]
    with conn_for(shop) as conn:
        rule(conn, org, p1, wh, min_quantity=150, max_quantity=400)
        draft = purchase(conn, org, p1, wh, 30, "draft")
        line = lines(suggest(conn, org.users["viewer"]))[(p1, wh)]
        assert float(line["incoming_draft"]) == 30
        assert float(line["available"]) == 130
        assert Decimal(str(line["suggested_quantity"])) == 270
        call(
            conn,
            org.users["manager"],
            "select public.update_order_status(%s, 'cancelled')",
            (draft["id"],),
        )
        purchase(conn, org, p1, wh, 500, "draft")
        result = suggest(conn, org.users["viewer"])
        assert (p1, wh) not in lines(result)
        covered = {(c["product_id"], c["location_id"]): c for c in result["covered_by_drafts"]}
        assert float(covered[(p1, wh)]["incoming_draft"]) == 500
        assert result["line_count"] == 0
        # Confirmed purchase orders count too, as on_order.
        p3 = org.products["P3"]
        rule(conn, org, p3, wh, min_quantity=250, max_quantity=400)
        purchase(conn, org, p3, wh, 120, "confirmed")
        line = lines(suggest(conn, org.users["viewer"]))[(p3, wh)]
        assert float(line["on_order"]) == 120
        assert Decimal(str(line["suggested_quantity"])) == 400 - (110 + 120)


def test_minimum_order_quantity_and_pack_rounding(shop) -> None:
    """A need of 30 from a supplier with minimum 50 and packs of 12 is ordered as 60."""
    org = shop["org"]
    p2, wh = org.products["P2"], org.locations["WH1"]
    with conn_for(shop) as conn:
        terms(
            conn,
            org,
            shop["s2"],
            p2,
            minimum_order_quantity=50,
            pack_size=12,
            unit_cost=Decimal("3.5"),
            preferred=True,
        )
        rule(conn, org, p2, wh, reorder_point=120, max_quantity=129)  # 99 available: need 30
        line = lines(suggest(conn, org.users["viewer"]))[(p2, wh)]
        assert float(line["available"]) == 99
        assert Decimal(str(line["suggested_quantity"])) == 60
        assert float(line["minimum_order_quantity"]) == 50 and float(line["pack_size"]) == 12
        assert float(line["unit_cost"]) == 3.5


def test_preferred_supplier_decides(shop) -> None:
    """The preferred supplier_products row wins over products.supplier_id, with its lead time
    and price; without rows products.supplier_id is the supplier; one preferred per product."""
    org = shop["org"]
    p1, p3, wh = org.products["P1"], org.products["P3"], org.locations["WH1"]
    with conn_for(shop) as conn:
        terms(conn, org, shop["s1"], p3, unit_cost=5)
        terms(conn, org, shop["s2"], p3, unit_cost=4, lead_time_days=2, preferred=True)
        for product in (p1, p3):
            rule(conn, org, product, wh, min_quantity=200, max_quantity=300)
        found = lines(suggest(conn, org.users["viewer"]))
        assert found[(p3, wh)]["supplier_id"] == shop["s2"]
        assert found[(p3, wh)]["lead_time_days"] == 2
        assert float(found[(p3, wh)]["unit_cost"]) == 4
        assert found[(p1, wh)]["supplier_id"] == shop["s1"]
        assert found[(p1, wh)]["lead_time_days"] == 7
        with pytest.raises(psycopg.Error) as info:
            call(
                conn,
                org.users["manager"],
                "update public.supplier_products set preferred = true"
                " where product_id = %s and supplier_id = %s",
                (p3, shop["s1"]),
            )
        assert info.value.sqlstate == "23505"


def test_suggestions_are_per_location(shop) -> None:
    """Rules at two locations give two orders, each on its own location's stock."""
    org = shop["org"]
    p1, wh, st = org.products["P1"], org.locations["WH1"], org.locations["ST1"]
    with conn_for(shop) as conn:
        rule(conn, org, p1, wh, min_quantity=150, max_quantity=400)
        rule(conn, org, p1, st, min_quantity=10, max_quantity=40)
        result = suggest(conn, org.users["viewer"])
        found = lines(result)
        assert Decimal(str(found[(p1, wh)]["suggested_quantity"])) == 300
        assert Decimal(str(found[(p1, st)]["suggested_quantity"])) == 40
        assert {po["location_id"] for po in result["purchase_orders"]} == {wh, st}
        only_store = call(
            conn,
            org.users["viewer"],
            "select public.reorder_suggestions(location_id => %s)",
            (st,),
        )[0][0]
        assert set(lines(only_store)) == {(p1, st)}


def test_draft_orders_from_suggestions_are_idempotent(shop) -> None:
    """One draft PO per supplier and location; a second call creates nothing (also for a
    catalog reorder point without demand and a rule whose max is its min); a replayed key
    returns the first answer; staff may not."""
    org = shop["org"]
    p1, p2, p3 = org.products["P1"], org.products["P2"], org.products["P3"]
    wh, st = org.locations["WH1"], org.locations["ST1"]
    manager = org.users["manager"]
    with conn_for(shop) as conn:
        terms(conn, org, shop["s2"], p2, pack_size=10, preferred=True, unit_cost=Decimal("2.25"))
        rule(conn, org, p1, wh, min_quantity=150, max_quantity=400)
        rule(conn, org, p1, st, min_quantity=10, max_quantity=10)
        rule(conn, org, p2, wh, min_quantity=150, max_quantity=205)
        conn.execute("update public.products set reorder_point = 200 where id = %s", (p3,))
        conn.commit()
        conn.execute("select private.refresh_analytics_views(false)")
        conn.commit()
        first = call(
            conn, manager, "select public.create_replenishment_orders(idempotency_key => 'k1')"
        )[0][0]
        assert first["created"] == 3 and first["replayed"] is False
        made = {(o["supplier_id"], o["location_id"]): o for o in first["orders"]}
        assert set(made) == {(shop["s1"], wh), (shop["s1"], st), (shop["s2"], wh)}
        assert all(o["status"] == "draft" and o["kind"] == "purchase" for o in first["orders"])
        quantities = {
            (i["product_id"], o["location_id"]): float(i["quantity"])
            for o in first["orders"]
            for i in o["items"]
        }
        # 400 - 100; above the min of 10 (max 10); 205 - 99 = 106 in packs of 10; above the
        # catalog point of 200 from 110 without demand.
        assert quantities == {(p1, wh): 300, (p1, st): 11, (p2, wh): 110, (p3, wh): 91}
        assert float(made[(shop["s2"], wh)]["items"][0]["unit_price"]) == 2.25
        assert suggest(conn, org.users["viewer"])["line_count"] == 0
        again = call(conn, manager, "select public.create_replenishment_orders()")[0][0]
        assert again["created"] == 0
        replay = call(
            conn, manager, "select public.create_replenishment_orders(idempotency_key => 'k1')"
        )[0][0]
        assert replay["replayed"] is True and replay["orders"] == first["orders"]
        count = conn.execute(
            "select count(*) from public.orders where organization_id = %s and kind = 'purchase'"
            " and status = 'draft'",
            (org.id,),
        ).fetchone()[0]
        assert count == 3
        with pytest.raises(psycopg.Error) as info:
            call(conn, org.users["staff"], "select public.create_replenishment_orders()")
        assert error_of(info.value) == ("PT403", "forbidden")


def test_tenancy(shop) -> None:
    """Another organization's members see none of these rules or suggestions and cannot write
    them; viewers read rules but do not write them."""
    org = shop["org"]
    p1, wh = org.products["P1"], org.locations["WH1"]
    with conn_for(shop) as conn:
        other = _org(conn, "s")
        rule(conn, org, p1, wh, min_quantity=150, max_quantity=400)
        terms(conn, org, shop["s2"], p1, pack_size=1)
        for table in ("reorder_rules", "supplier_products"):
            assert call(conn, other.users["owner"], f"select count(*) from public.{table}") == [
                (0,)
            ]
            assert call(conn, org.users["viewer"], f"select count(*) from public.{table}") == [(1,)]
        for uid in (other.users["manager"], org.users["viewer"]):
            with pytest.raises(psycopg.Error) as info:
                call(
                    conn,
                    uid,
                    "insert into public.reorder_rules (organization_id, product_id, location_id,"
                    " reorder_point) values (%s, %s, %s, 5)",
                    (org.id, org.products["P2"], wh),
                )
            assert info.value.sqlstate == "42501"
        for fn in ("reorder_suggestions(%s::uuid)", "create_replenishment_orders(%s::uuid)"):
            with pytest.raises(psycopg.Error) as info:
                call(conn, other.users["manager"], f"select public.{fn}", (org.id,))
            assert error_of(info.value)[0] == "PT403", fn
        assert lines(suggest(conn, other.users["owner"])) == {}
        with pytest.raises(psycopg.Error) as info:
            call(
                conn,
                org.users["manager"],
                "insert into public.reorder_rules (organization_id, product_id, location_id,"
                " min_quantity) values (%s, %s, %s, 5)",
                (org.id, org.products["P3"], wh),
            )
        assert info.value.sqlstate == "23514"  # a min needs a max
