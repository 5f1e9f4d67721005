"""Analytics benchmark: each analytics RPC warm, against the same figure from the base tables.

Usage: .venv/bin/python bench/analytics.py [--database-url URL] [--runs 20] [--seed-scale large]
       [--case NAME]  (only the cases whose name contains NAME)
Creates (once) the database nimbus_bench_large, migrates it and runs `nimbus seed --scale large`
into it when it has no data, then times every RPC as the owner of the largest organization
(claims set the way PostgREST sets them) and the equivalent base-table query as the superuser.
Prints one line per function: median and p95 in ms, the base-table median, and the ratio of
the two medians (RPC / base tables; machine load cancels out of it, roughly).

--compare-database URL (a copy of the same data with other functions or views, e.g. the tree
before a change): instead, each RPC is called on both databases in turn, run after run, so that
both medians see the same machine load; prints before (that database), after (--database-url)
and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.local.migrate import ensure_database, migrate  # noqa: E402
from proxy.local.seeding import seed_scale  # noqa: E402

DB = "postgresql://postgres@127.0.0.1:5432/nimbus_bench_large"

SALES_BASE = """
select date_trunc('week', o.completed_at)::date, sum(i.quantity), sum(i.quantity * i.unit_price)
from public.orders as o join public.order_items as i on i.order_id = o.id
where o.organization_id = %(o)s and o.kind = 'sales' and o.status = 'fulfilled'
  and o.completed_at >= current_date - 364 group by 1
"""
CASES = {
    "dashboard()": (
        "select public.dashboard()",
        """select (select count(*) from public.products where organization_id = %(o)s),
          (select sum(c.value) from private.product_costs as c
           where c.organization_id = %(o)s),
          (select count(*) from public.low_stock_products(null, %(o)s)),
          (select sum(i.quantity * i.unit_price) from public.orders as o
           join public.order_items as i on i.order_id = o.id where o.organization_id = %(o)s
           and o.kind = 'sales' and o.status = 'fulfilled'
           and o.completed_at >= current_date - 29)""",
    ),
    "sales_analytics(365 d, week, none)": (
        "select public.sales_analytics(current_date - 364, current_date, 'week', 'none')",
        SALES_BASE,
    ),
    "sales_analytics(365 d, month, product)": (
        "select public.sales_analytics(current_date - 364, current_date, 'month', 'product')",
        SALES_BASE.replace("date_trunc('week'", "i.product_id, date_trunc('month'").replace(
            "group by 1", "group by 1, 2"
        ),
    ),
    "inventory_turnover(365 d)": (
        "select public.inventory_turnover()",
        """select (select sum(i.quantity * i.unit_cost) from public.orders as o
           join public.order_items as i on i.order_id = o.id where o.organization_id = %(o)s
           and o.kind = 'sales' and o.status = 'fulfilled'
           and o.completed_at >= current_date - 364),
          (select sum(m.wac_value) from public.stock_movements as m
           where m.organization_id = %(o)s and m.created_at >= current_date - 364)""",
    ),
    "demand_forecast(org total, 30)": (
        "select public.demand_forecast(null, 30)",
        """select o.completed_at::date, sum(i.quantity) from public.orders as o
           join public.order_items as i on i.order_id = o.id where o.organization_id = %(o)s
           and o.kind = 'sales' and o.status = 'fulfilled'
           and o.completed_at >= current_date - 365 group by 1""",
    ),
    "sales_analytics(90 d, day, product)": (
        "select public.sales_analytics(current_date - 89, current_date, 'day', 'product')",
        SALES_BASE.replace("date_trunc('week', o.completed_at)", "i.product_id, o.completed_at")
        .replace("current_date - 364", "current_date - 89")
        .replace("group by 1", "group by 1, 2"),
    ),
    "sales_analytics(365 d, week, category)": (
        "select public.sales_analytics(current_date - 364, current_date, 'week', 'category')",
        SALES_BASE.replace("date_trunc('week'", "p.category_id, date_trunc('week'")
        .replace(
            "join public.order_items as i on i.order_id = o.id",
            "join public.order_items as i on i.order_id = o.id"
            " join public.products as p on p.id = i.product_id",
        )
        .replace("group by 1", "group by 1, 2"),
    ),
    "reorder_suggestions()": (
        "select public.reorder_suggestions()",
        # Its inputs from the base tables: 90-day demand sums and stock per product and location.
        """select d.product_id, d.location_id, d.s1, d.s2, s.on_hand, s.reserved
           from (select i.product_id, o.location_id, sum(i.quantity) as s1,
             sum(i.quantity * i.quantity) as s2
             from public.orders as o join public.order_items as i on i.order_id = o.id
             where o.organization_id = %(o)s and o.kind = 'sales' and o.status = 'fulfilled'
             and o.completed_at >= current_date - 90 group by 1, 2) as d
           full join (select l.product_id, l.location_id, l.on_hand, l.reserved
             from public.stock_levels as l where l.organization_id = %(o)s) as s
           on s.product_id = d.product_id and s.location_id = d.location_id""",
    ),
    "stock_valuation(weighted_average)": (
        "select public.stock_valuation('weighted_average')",
        # The live computation it replaced: value per category and per location at average cost.
        """select p.category_id, sum(c.quantity), sum(c.value)
           from private.product_costs as c join public.products as p on p.id = c.product_id
           where c.organization_id = %(o)s and c.quantity > 0 group by 1
           union all
           select l.location_id, sum(l.on_hand), sum(l.on_hand * c.value / c.quantity)
           from public.stock_levels as l
           join private.product_costs as c on c.product_id = l.product_id
           where l.organization_id = %(o)s and c.quantity > 0 group by 1""",
    ),
    "stock_valuation(fifo)": (
        "select public.stock_valuation('fifo')",
        # The live computation: the remaining FIFO layers per category and per location.
        """select p.category_id, sum(cl.remaining), sum(cl.remaining_value)
           from private.cost_layers as cl join public.products as p on p.id = cl.product_id
           where cl.organization_id = %(o)s and cl.remaining > 0 group by 1
           union all
           select cl.location_id, sum(cl.remaining), sum(cl.remaining_value)
           from private.cost_layers as cl
           where cl.organization_id = %(o)s and cl.remaining > 0 group by 1""",
    ),
}


def timed(conn: psycopg.Connection, sql: str, params: dict, runs: int) -> list[float]:
    """Milliseconds of each of `runs` executions after two warm-up runs."""
    out = []
    for i in range(runs + 2):
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        if i >= 2:
            out.append((time.perf_counter() - started) * 1000)
    return out


def owner_connection(url: str) -> psycopg.Connection:
    """A connection acting as the owner of the largest organization, as PostgREST would."""
    conn = psycopg.connect(url, autocommit=True)
    (owner,) = conn.execute(
        "select m.user_id from public.organizations as o"
        " join public.memberships as m on m.organization_id = o.id and m.role = 'owner'"
        " order by (select count(*) from public.products as p"
        " where p.organization_id = o.id) desc limit 1"
    ).fetchone()
    conn.execute(
        "select set_config('request.jwt.claims', %s, false)",
        (json.dumps({"sub": str(owner), "role": "authenticated"}),),
    )
    conn.execute("set role authenticated")
    return conn


def compare(before_url: str, after_url: str, runs: int, only: str) -> None:
    """Each RPC on both databases in turn, run after run: medians under the same load."""
    with owner_connection(before_url) as before, owner_connection(after_url) as after:
        for name, (rpc, _base) in CASES.items():
            if only not in name:
                continue
            spent: dict[str, list[float]] = {"before": [], "after": []}
            for i in range(runs + 2):
                for side, conn in (("before", before), ("after", after)):
                    started = time.perf_counter()
                    conn.execute(rpc).fetchall()
                    if i >= 2:
                        spent[side].append((time.perf_counter() - started) * 1000)
            b, a = (statistics.median(spent[k]) for k in ("before", "after"))
            p95 = statistics.quantiles(spent["after"], n=20)[-1]
            print(
                f"{name:40s} before {b:7.1f} ms  after {a:7.1f} ms  p95 {p95:7.1f} ms"
                f"  after/before {a / b:5.2f}"
            )


def main() -> None:
    """Prepare the database if needed, then time each case."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=DB)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed-scale", default="large", choices=["demo", "large"])
    parser.add_argument("--case", default="", help="only the cases whose name contains this")
    parser.add_argument(
        "--compare-database", help="time each RPC here too, interleaved (before vs after)"
    )
    args = parser.parse_args()
    if args.compare_database:
        compare(args.compare_database, args.database_url, args.runs, args.case)
        return
    if ensure_database(args.database_url):
        migrate(args.database_url, echo=lambda _line: None)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        empty = conn.execute("select not exists (select from public.order_items)").fetchone()[0]
    if empty:
        started = time.perf_counter()
        seed_scale(args.database_url, args.seed_scale, seed=1)
        print(f"seeded {args.seed_scale} in {time.perf_counter() - started:.1f}s")
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        org, owner, products, items = conn.execute(
            "select o.id, m.user_id, (select count(*) from public.products as p"
            " where p.organization_id = o.id), (select count(*) from public.order_items as i"
            " where i.organization_id = o.id) from public.organizations as o"
            " join public.memberships as m on m.organization_id = o.id and m.role = 'owner'"
            " order by 3 desc limit 1"
        ).fetchone()
        print(f"organization {org}: {products} products, {items} order items")
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"sub": str(owner), "role": "authenticated"}),),
        )
        for name, (rpc, base) in CASES.items():
            if args.case not in name:
                continue
            conn.execute("set role authenticated")
            rpc_ms = timed(conn, rpc, {}, args.runs)
            conn.execute("reset role")
            base_ms = timed(conn, base, {"o": org}, max(3, args.runs // 4)) if base else None
            p95 = statistics.quantiles(rpc_ms, n=20)[-1]
            median = statistics.median(rpc_ms)
            base_txt = f"{statistics.median(base_ms):8.1f}" if base_ms else "     n/a"
            ratio = f"{median / statistics.median(base_ms):6.3f}" if base_ms else "   n/a"
            print(
                f"{name:40s} median {median:7.1f} ms  p95 {p95:7.1f} ms"
                f"  base tables {base_txt} ms  ratio {ratio}"
            )


if __name__ == "__main__":
    main()
