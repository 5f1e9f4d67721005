"""Analytics RPCs: forecasting, reorder arithmetic, the normal quantile, tenancy, validation."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from statistics import NormalDist, mean

import psycopg
import pytest

from proxy.local.seeding import OrgSpec, ensure_user, load_organization, seed_demo_org, stable_uuid
from tests.support.db import as_role

OTHER = OrgSpec("tenant-b", "Tenant B", 40, 2, 2, 120, 8)
VIEWS = (
    "private.daily_sales",
    "private.daily_stock_changes",
    "private.organization_summary",
    "private.location_daily_sales",
    "private.category_daily_sales",
    "private.product_sales_stats",
    "private.product_stock",
    "private.reorder_inputs",
    "private.stock_by_group",
)


@pytest.fixture(scope="module")
def tenants(database_url: str) -> dict:
    """Organization A (the demo data set, its owner) and B (a small second tenant), refreshed."""
    demo = seed_demo_org(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        owner_b = ensure_user(conn, "owner@tenant-b.example", stable_uuid(5, "b:owner"))
        org_b = conn.execute(
            "select id::text from public.organizations where slug = %s", (OTHER.slug,)
        ).fetchone()
        if org_b is None:
            until = dt.datetime.now(dt.UTC).date()
            load_organization(conn, OTHER, seed=5, owner_id=owner_b, until=until)
        org_b = conn.execute(
            "select id::text from public.organizations where slug = %s", (OTHER.slug,)
        ).fetchone()[0]
        conn.execute("select private.refresh_analytics_views(false)")
    return {"a": demo["organization_id"], "user_a": demo["user_id"], "b": org_b, "user_b": owner_b}


def claims(user: str) -> dict:
    """JWT claims of an authenticated user, as PostgREST sets them."""
    return {"sub": user, "role": "authenticated"}


def call(db, user: str, sql: str, *args):
    """Run one RPC as an authenticated user and return its single value."""
    with as_role(db, "authenticated", claims(user)):
        return db.execute(sql, args).fetchone()[0]


def raised(db, user: str, sql: str, *args) -> psycopg.Error:
    """Run one RPC as a user and return the error it raised."""
    with pytest.raises(psycopg.Error) as info, as_role(db, "authenticated", claims(user)):
        db.execute(sql, args)
    return info.value


def test_inverse_normal_cdf(db) -> None:
    """Acklam's approximation: 0.95 -> 1.6449, symmetric, 0.5 -> 0, tails accurate."""
    for p in (0.001, 0.02, 0.5, 0.8, 0.95, 0.975, 0.9999):
        (z,) = db.execute("select private.inverse_normal_cdf(%s)", (p,)).fetchone()
        assert z == pytest.approx(NormalDist().inv_cdf(p), abs=1e-8)
    (z,) = db.execute("select private.inverse_normal_cdf(0.95)").fetchone()
    assert round(z, 4) == 1.6449


def test_constant_demand_forecast_is_the_constant(db) -> None:
    """SES on a constant series forecasts the constant, with a perfect (0) and finite MASE."""
    (fit,) = db.execute(
        "select private.forecast_series(array_fill(7::float8, array[120]), 14, 0.3, 14)"
    ).fetchone()
    assert fit["method"] == "ses"
    assert float(fit["daily_forecast"]) == 7
    assert float(fit["horizon_total"]) == 98
    assert fit["mase"] is not None and math.isfinite(float(fit["mase"]))
    assert float(fit["mase"]) == 0


def test_ses_matches_python(db) -> None:
    """SES level and MASE equal a direct Python computation on a noisy series."""
    series = [10 + (i * 37 % 11) - 5 for i in range(90)]
    alpha, hold = 0.25, 10

    def ses(values):
        level = values[0]
        for v in values[1:]:
            level = alpha * v + (1 - alpha) * level
        return level

    train = series[:-hold]
    mae = mean(abs(v - ses(train)) for v in series[-hold:])
    scale = mean(abs(a - b) for a, b in zip(train[1:], train[:-1], strict=True))
    (fit,) = db.execute(
        "select private.forecast_series(%s::float8[], 30, %s, %s)", (series, alpha, hold)
    ).fetchone()
    assert fit["method"] == "ses"
    assert float(fit["daily_forecast"]) == pytest.approx(ses(series), abs=1e-4)
    assert float(fit["mase"]) == pytest.approx(mae / scale, abs=1e-4)


def test_intermittent_series_uses_croston(db) -> None:
    """A series with demand of 6 every third day is intermittent: Croston forecasts 6/3 = 2."""
    series = [6 if i % 3 == 2 else 0 for i in range(120)]
    (fit,) = db.execute(
        "select private.forecast_series(%s::float8[], 30, 0.2, 28)", (series,)
    ).fetchone()
    assert fit["method"] == "croston"
    assert float(fit["daily_forecast"]) == pytest.approx(2.0)
    assert float(fit["zero_demand_share"]) == pytest.approx(2 / 3, abs=1e-3)
    assert fit["mase"] is not None


def test_demand_forecast_rpc(db, tenants) -> None:
    """The RPC returns one forecast row per horizon day, as_of and a method for a slow seller.

    Issue 16: the model is chosen on a hold-out among sba/tsb for intermittent demand (Croston's
    method is no longer offered) and among the smoothing models otherwise, so the slow seller's
    method is sba or tsb (or median for a very sparse one, the mean then from sba or tsb) and the
    organization's total (never intermittent) one of the others.
    """
    (slow,) = db.execute(
        "select product_id::text from private.daily_sales where organization_id = %s"
        " group by product_id order by count(*), product_id limit 1",
        (tenants["a"],),
    ).fetchone()
    result = call(db, tenants["user_a"], "select public.demand_forecast(%s::uuid, 14)", slow)
    assert result["method"] in {"sba", "tsb", "median"}
    assert result["expected_model"] in {"sba", "tsb"}
    assert float(result["expected_daily"]) > 0
    assert len(result["forecast"]) == 14
    assert result["as_of"] and result["product_id"] == slow
    total = call(db, tenants["user_a"], "select public.demand_forecast()")
    assert total["method"] in {"ses", "holt_damped", "seasonal", "holt_winters_damped"}
    assert len(total["forecast"]) == 30


def test_reorder_point_arithmetic(db, tenants) -> None:
    """Reorder point per product and location = forecast demand over the lead time + z times
    the forecast's own error over it (issue 16: it was the pooled 90-day mean and sigma): the
    figures of private.forecast_series on that location's 90 days, checked in Python."""
    pid, lead = db.execute(
        "select p.id::text, s.lead_time_days from public.products as p"
        " join public.suppliers as s on s.id = p.supplier_id"
        " where p.organization_id = %s and p.sku = 'SKU-000001'",
        (tenants["a"],),
    ).fetchone()
    db.execute("set local session_replication_role = replica")
    db.execute(
        "update public.products set reorder_point = null, safety_stock = 0 where id = %s", (pid,)
    )
    db.execute(
        "update public.stock_levels set on_hand = 0, reserved = 0 where product_id = %s", (pid,)
    )
    db.execute("set local session_replication_role = origin")
    # Stock and reorder parameters are read as of the refresh: refresh them inside the test.
    db.execute("refresh materialized view private.product_stock")
    db.execute("refresh materialized view private.reorder_inputs")
    (as_of,) = db.execute("select min(refreshed_at) from private.analytics_refreshes").fetchone()
    last = as_of.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    (location,) = db.execute(
        "select location_id::text from private.daily_sales where product_id = %s"
        " and day between %s and %s and units > 0 group by 1 order by sum(units) desc limit 1",
        (pid, last - dt.timedelta(days=89), last),
    ).fetchone()
    rows = dict(
        db.execute(
            "select day, sum(units)::float8 from private.daily_sales where product_id = %s"
            " and location_id = %s and day between %s and %s and units > 0 group by day",
            (pid, location, last - dt.timedelta(days=89), last),
        ).fetchall()
    )
    daily = [rows.get(last - dt.timedelta(days=89 - i), 0.0) for i in range(90)]
    (fit,) = db.execute(
        "select private.forecast_series(demand => %s::float8[], horizon_days => 28)", (daily,)
    ).fetchone()
    # The mean to plan with (the chosen model's, or the best mean model's when median wins).
    demand = float(fit["expected_daily"])
    error = float(fit["expected_rmse"])
    z = NormalDist().inv_cdf(0.95)
    rop = demand * lead + z * error * math.sqrt(lead)
    result = call(
        db,
        tenants["user_a"],
        "select public.reorder_suggestions(location_id => %s, line_limit => 10000)",
        location,
    )
    lines = [ln for po in result["purchase_orders"] for ln in po["lines"]]
    line = next(ln for ln in lines if ln["product_id"] == pid)
    assert line["rule"] == "forecast"
    assert float(line["reorder_point"]) == pytest.approx(rop, abs=1e-3)
    assert float(line["suggested_quantity"]) == math.ceil(round(rop + demand * 30, 3))
    assert result["z"] == pytest.approx(z, abs=1e-6)
    assert all(po["status"] == "draft" for po in result["purchase_orders"])
    assert {po["location_id"] for po in result["purchase_orders"]} == {location}


def test_results_stay_in_the_callers_organization(db, tenants) -> None:
    """A's dashboard, sales and valuation contain only A's rows; asking for B is 403."""
    products_a = {
        r[0]
        for r in db.execute(
            "select id::text from public.products where organization_id = %s", (tenants["a"],)
        )
    }
    dash = call(db, tenants["user_a"], "select public.dashboard()")
    assert dash["organization_id"] == tenants["a"] and dash["products"] == len(products_a)
    assert dash["top_products"] and dash["recent_movements"]
    assert {p["product_id"] for p in dash["top_products"]} <= products_a
    assert {m["product_id"] for m in dash["recent_movements"]} <= products_a
    sales = call(
        db,
        tenants["user_a"],
        "select public.sales_analytics(current_date - 200, current_date, 'week', 'product')",
    )
    assert {g["key"] for g in sales["groups"]} <= products_a
    dash_b = call(db, tenants["user_b"], "select public.dashboard()")
    assert dash_b["organization_id"] == tenants["b"]
    assert not {p["product_id"] for p in dash_b["top_products"]} & products_a
    for fn in (
        "dashboard(%s::uuid)",
        "sales_analytics(null, null, 'day', 'none', %s::uuid)",
        "inventory_turnover(null, null, %s::uuid)",
        "reorder_suggestions(%s::uuid)",
        "stock_valuation('weighted_average', %s::uuid)",
    ):
        err = raised(db, tenants["user_a"], f"select public.{fn}", tenants["b"])
        assert err.sqlstate == "PT403", fn


def test_totals_agree_with_base_tables(db, tenants) -> None:
    """MV-backed figures equal the same figures computed from the base tables.

    Stock is valued from the costing facts (issue 12), not the catalog cost: the weighted
    average value is private.product_costs.value, the FIFO value the remaining cost layers.
    """
    stock_value, fifo_value, revenue = db.execute(
        "select (select sum(c.value) from private.product_costs c"
        " where c.organization_id = %(o)s),"
        " (select sum(cl.remaining_value) from private.cost_layers cl"
        " where cl.organization_id = %(o)s),"
        " (select sum(i.quantity * i.unit_price) from public.orders o join public.order_items i"
        " on i.order_id = o.id where o.organization_id = %(o)s and o.kind = 'sales'"
        " and o.status = 'fulfilled' and o.completed_at >= current_date - 90)",
        {"o": tenants["a"]},
    ).fetchone()
    dash = call(db, tenants["user_a"], "select public.dashboard()")
    assert float(dash["stock_value"]) == pytest.approx(float(stock_value), abs=0.01)
    valuation = call(db, tenants["user_a"], "select public.stock_valuation()")
    assert float(valuation["value"]) == pytest.approx(float(stock_value), abs=0.01)
    fifo = call(db, tenants["user_a"], "select public.stock_valuation('fifo')")
    assert float(fifo["units"]) == float(valuation["units"])
    assert float(fifo["value"]) == pytest.approx(float(fifo_value), abs=0.01)
    sales = call(
        db,
        tenants["user_a"],
        "select public.sales_analytics(current_date - 90, current_date, 'month')",
    )
    assert float(sales["totals"]["revenue"]) == pytest.approx(float(revenue), abs=0.01)
    turnover = call(db, tenants["user_a"], "select public.inventory_turnover()")
    assert float(turnover["closing_inventory_value"]) == pytest.approx(float(stock_value), 0.01)
    assert turnover["turnover"] > 0 and turnover["days_of_inventory"] > 0


@pytest.mark.parametrize(
    "sql",
    [
        "select public.sales_analytics('2026-02-01', '2026-01-01')",
        "select public.sales_analytics(null, null, 'year')",
        "select public.sales_analytics(null, null, 'day', 'supplier')",
        "select public.sales_analytics('2020-01-01', '2023-01-06')",
        "select public.inventory_turnover('2026-02-01', '2026-01-01')",
        "select public.inventory_turnover('2020-01-01', '2023-01-06')",
        "select public.demand_forecast(null, 0)",
        "select public.demand_forecast(null, 366)",
        "select public.stock_valuation('lifo')",
    ],
)
def test_bad_arguments_are_400(db, tenants, sql: str) -> None:
    """Invalid ranges, granularities, groupings, horizons and methods: PT400 validation_failed."""
    err = raised(db, tenants["user_a"], sql)
    assert err.sqlstate == "PT400"
    assert err.diag.message_hint == "validation_failed"


def test_anon_cannot_call_analytics(db) -> None:
    """anon has no EXECUTE on any analytics RPC."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "anon"):
        db.execute("select public.dashboard()")


def test_refresh_analytics_roles(db, tenants, new_user) -> None:
    """service_role refreshes; owners may (throttled); a viewer gets 403."""
    with as_role(db, "service_role", {"role": "service_role"}):
        (out,) = db.execute("select public.refresh_analytics()").fetchone()
    assert out["refreshed"] is True and len(out["views"]) == len(VIEWS)
    assert {v["view"] for v in out["views"]} == set(VIEWS)
    assert isinstance(out["expiring_lots_announced"], int)
    owner = call(db, tenants["user_a"], "select public.refresh_analytics()")
    assert owner["as_of"]
    viewer = new_user()
    db.execute(
        "insert into public.memberships (user_id, organization_id, role) values (%s, %s, 'viewer')",
        (viewer, tenants["a"]),
    )
    err = raised(db, viewer, "select public.refresh_analytics()")
    assert err.sqlstate == "PT403"


# Each new view against the same figures computed from daily_sales or the base tables: rows in
# one and not the other, both ways (numeric sums are exact, so equality is exact).
VIEW_CHECKS = {
    "location_daily_sales": (
        "select location_id, day, units, revenue, cogs_wac, cogs_fifo, order_lines, facts"
        " from private.location_daily_sales where organization_id = %(o)s",
        "select location_id, day, sum(units), sum(revenue), sum(cogs_wac), sum(cogs_fifo),"
        " sum(order_count), count(*)"
        " from private.daily_sales where organization_id = %(o)s group by 1, 2",
    ),
    "category_daily_sales": (
        "select nullif(category_id, '00000000-0000-0000-0000-000000000000'), day, units, revenue,"
        " cogs_wac, cogs_fifo, order_lines, facts from private.category_daily_sales"
        " where organization_id = %(o)s",
        # Cost of goods sold is a ledger fact (issue 12): what the orders' sale movements took
        # out (wac_value, fifo_value), no longer quantity * the line's or the catalog's cost.
        "with s as (select p.category_id, o.completed_at::date as day, sum(i.quantity) as u,"
        " sum(i.quantity * i.unit_price) as r, count(distinct (o.id, i.product_id)) as n,"
        " count(distinct (i.product_id, o.location_id)) as f"
        " from public.orders o join public.order_items i on i.order_id = o.id"
        " join public.products p on p.id = i.product_id where o.organization_id = %(o)s"
        " and o.kind = 'sales' and o.status = 'fulfilled' group by 1, 2),"
        " c as (select p.category_id, o.completed_at::date as day, -sum(m.wac_value) as w,"
        " -sum(m.fifo_value) as ff from public.orders o join public.stock_movements m"
        " on m.order_id = o.id and m.kind = 'sale' join public.products p on p.id = m.product_id"
        " where o.organization_id = %(o)s and o.kind = 'sales' and o.status = 'fulfilled'"
        " group by 1, 2)"
        " select s.category_id, s.day, s.u, s.r, coalesce(c.w, 0), coalesce(c.ff, 0), s.n, s.f"
        " from s left join c on c.category_id is not distinct from s.category_id"
        " and c.day = s.day",
    ),
    "product_sales_stats": (
        "select product_id, revenue_total, revenue_365d, revenue_90d, revenue_30d, demand_days,"
        " demand_units, demand_squares"
        " from private.product_sales_stats where organization_id = %(o)s",
        "with d as (select product_id, day, sum(units)::float8 as u from private.daily_sales"
        " where organization_id = %(o)s and day between (now() at time zone 'UTC')::date - 90"
        " and (now() at time zone 'UTC')::date - 1 group by 1, 2),"
        " t as (select i.product_id, sum(i.quantity * i.unit_price) as r,"
        + ", ".join(
            f"coalesce(sum(i.quantity * i.unit_price) filter (where"
            f" (o.completed_at at time zone 'UTC')::date"
            f" > (now() at time zone 'UTC')::date - 1 - {k}), 0) as r{k}"
            for k in (365, 90, 30)
        )
        + " from public.orders o join public.order_items i on i.order_id = o.id"
        " where o.organization_id = %(o)s and o.kind = 'sales' and o.status = 'fulfilled'"
        " group by 1)"
        " select t.product_id, t.r, t.r365, t.r90, t.r30, count(d.u), coalesce(sum(d.u), 0),"
        " coalesce(sum(d.u * d.u), 0)"
        " from t left join d on d.product_id = t.product_id"
        " group by t.product_id, t.r, t.r365, t.r90, t.r30",
    ),
    # Stock value by both costing methods (issue 12), not on hand * the catalog cost.
    "product_stock": (
        "select product_id, on_hand, reserved, value_wac, value_fifo from private.product_stock"
        " where organization_id = %(o)s",
        "select l.product_id, sum(l.on_hand), sum(l.reserved),"
        " coalesce((select c.value from private.product_costs c"
        " where c.product_id = l.product_id), 0),"
        " coalesce((select sum(cl.remaining_value) from private.cost_layers cl"
        " where cl.product_id = l.product_id), 0)"
        " from public.stock_levels l where l.organization_id = %(o)s group by 1",
    ),
    # Per product and location since issue 16 (it was per product, stock pooled).
    "reorder_inputs": (
        "select product_id, location_id, reorder_point, safety_stock, demand_units, on_hand,"
        " reserved from private.reorder_inputs where organization_id = %(o)s",
        "with d as (select product_id, location_id, sum(units)::float8 as u"
        " from private.daily_sales where organization_id = %(o)s and units > 0"
        " and day between (now() at time zone 'UTC')::date - 90"
        " and (now() at time zone 'UTC')::date - 1 group by 1, 2),"
        " pairs as (select product_id, location_id from d union"
        " select l.product_id, l.location_id from public.stock_levels l"
        " join public.products p on p.id = l.product_id"
        " where l.organization_id = %(o)s and p.reorder_point is not null)"
        " select p.id, x.location_id, p.reorder_point, p.safety_stock, coalesce(d.u, 0),"
        " coalesce(s.on_hand, 0), coalesce(s.reserved, 0)"
        " from pairs x join public.products p on p.id = x.product_id"
        " left join d on d.product_id = x.product_id and d.location_id = x.location_id"
        " left join public.stock_levels s"
        " on s.product_id = x.product_id and s.location_id = x.location_id"
        " where p.active and p.archived_at is null and (p.supplier_id is not null"
        " or exists (select from public.supplier_products sp where sp.product_id = p.id))",
    ),
    "stock_by_group": (
        "select dimension, nullif(key, '00000000-0000-0000-0000-000000000000'), units,"
        " value_wac, value_fifo from private.stock_by_group where organization_id = %(o)s",
        "with s as (select product_id, sum(on_hand) as h from public.stock_levels"
        " where organization_id = %(o)s group by 1),"
        " f as (select product_id, location_id, sum(remaining_value) as v"
        " from private.cost_layers where organization_id = %(o)s group by 1, 2)"
        " select 'category', p.category_id, sum(s.h), sum(coalesce(c.value, 0)),"
        " coalesce(sum((select sum(f.v) from f where f.product_id = s.product_id)), 0)"
        " from s join public.products p on p.id = s.product_id"
        " left join private.product_costs c on c.product_id = s.product_id"
        " where s.h > 0 group by 2"
        " union all select 'location', l.location_id, sum(l.on_hand),"
        " coalesce(sum(round(l.on_hand * c.value / nullif(c.quantity, 0), 4)), 0),"
        " coalesce((select sum(f.v) from f where f.location_id = l.location_id), 0)"
        " from public.stock_levels l"
        " left join private.product_costs c on c.product_id = l.product_id"
        " where l.organization_id = %(o)s group by 2",
    ),
}


@pytest.mark.parametrize("view", sorted(VIEW_CHECKS))
def test_rollup_views_agree_with_their_sources(db, tenants, view: str) -> None:
    """Each rollup view holds exactly the figures computed from daily_sales or the base tables."""
    db.execute("select private.refresh_analytics_views(false)")
    mine, base = VIEW_CHECKS[view]
    for org in (tenants["a"], tenants["b"]):
        rows = db.execute(mine, {"o": org}).fetchall()
        assert rows, view
        got = set(rows)
        want = set(db.execute(base, {"o": org}).fetchall())
        assert got - want == set() and want - got == set(), view


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
@pytest.mark.parametrize("days", [30, 200, 364])
def test_sales_by_product_ranks_candidates_exactly(db, tenants, granularity, days) -> None:
    """group_by product over candidates only (pruned) returns exactly the full ranking's result."""
    sql = "select public.sales_analytics(current_date - %s, current_date, %s, 'product')"
    results = []
    for prune_above in ("0", "1000000000"):
        with as_role(db, "authenticated", claims(tenants["user_a"])):
            db.execute("select set_config('nimbus.analytics_prune_rows', %s, true)", (prune_above,))
            results.append(db.execute(sql, (days, granularity)).fetchone()[0])
    pruned, full = results
    assert len(full["groups"]) == 25 and any(s["other"] for s in full["series"])
    assert pruned == full


def test_sales_groupings_agree_with_base_tables(db, tenants) -> None:
    """Revenue per location and per category over 120 days equals the base tables' figures."""
    base = {
        "location": "select o.location_id::text, sum(i.quantity * i.unit_price)",
        "category": "select p.category_id::text, sum(i.quantity * i.unit_price)",
    }
    tail = (
        " from public.orders o join public.order_items i on i.order_id = o.id"
        " join public.products p on p.id = i.product_id where o.organization_id = %s"
        " and o.kind = 'sales' and o.status = 'fulfilled'"
        " and (o.completed_at at time zone 'UTC')::date between current_date - 119"
        " and current_date group by 1"
    )
    for group_by, head in base.items():
        want = {k: round(v, 2) for k, v in db.execute(head + tail, (tenants["a"],)).fetchall()}
        got = call(
            db,
            tenants["user_a"],
            "select public.sales_analytics(current_date - 119, current_date, 'week', %s)",
            group_by,
        )
        assert {g["key"]: Decimal(str(g["revenue"])) for g in got["groups"]} == want, group_by


def test_valuation_breakdowns_agree_with_base_tables(db, tenants) -> None:
    """stock_valuation's by_category and by_location equal the costing facts, by both methods.

    Weighted average: private.product_costs (per location: on hand x the product's average
    cost); FIFO: the remaining cost layers. Not on hand x the catalog cost (issue 12).
    """
    db.execute("select private.refresh_analytics_views(false)")
    base = {
        "weighted_average": (
            "select p.category_id::text, round(sum(c.value), 2)"
            " from private.product_costs c join public.products p on p.id = c.product_id"
            " where c.organization_id = %s and c.quantity > 0 group by 1",
            "select l.location_id::text,"
            " round(sum(round(l.on_hand * c.value / nullif(c.quantity, 0), 4)), 2)"
            " from public.stock_levels l join private.product_costs c"
            " on c.product_id = l.product_id where l.organization_id = %s group by 1",
        ),
        "fifo": (
            "select p.category_id::text, round(sum(cl.remaining_value), 2)"
            " from private.cost_layers cl join public.products p on p.id = cl.product_id"
            " where cl.organization_id = %s and cl.remaining > 0 group by 1",
            "select location_id::text, round(sum(remaining_value), 2) from private.cost_layers"
            " where organization_id = %s and remaining > 0 group by 1",
        ),
    }
    for method, (category_sql, location_sql) in base.items():
        got = call(db, tenants["user_a"], "select public.stock_valuation(%s)", method)
        by_category = dict(db.execute(category_sql, (tenants["a"],)).fetchall())
        by_location = dict(db.execute(location_sql, (tenants["a"],)).fetchall())
        cats = {c["category_id"]: Decimal(str(c["value"])) for c in got["by_category"]}
        locs = {x["location_id"]: Decimal(str(x["value"])) for x in got["by_location"]}
        assert cats == by_category and locs == by_location, method
        assert got["as_of"] and got["method"] == method
