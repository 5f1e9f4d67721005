"""The full inventory invariant, in one place: what must hold in any database at any time.

`inventory_violations(database_url)` returns human-readable violations (empty when all holds):

- ledger: stock_levels.on_hand = sum of stock_movements.quantity per product and location;
  on_hand >= 0, 0 <= reserved <= on_hand;
- lots: each lot's quantity = sum of the movements that name it; the lots of a product at a
  location sum to at most its on_hand;
- reservations: reserved = sum of the open lines of confirmed (or partially fulfilled) sales
  orders at that location, quantity - done_quantity once that column exists;
- FIFO (once private.cost_layers exists): remaining of the layers per product and location =
  on_hand, 0 <= remaining <= quantity, an empty layer is worth 0, and the layers' remaining_value
  = the sum of the movements' fifo_value there (where every movement has one: rows older than
  costing have none);
- WAC (once private.product_costs exists): quantity = sum of on_hand per product, value >= 0,
  value = 0 when quantity = 0, and value = the sum of the movements' wac_value (where every
  movement of the product has one);
- numbers: no NaN or infinity in any numeric column of the inventory tables. NaN = NaN is true
  in PostgreSQL and NaN sorts above every number, so every comparison above would pass a NaN
  row: this check is what finds them (`x = 'NaN'::numeric`).

The checks adapt to the schema present (columns and tables added by later migrations are used
when they exist), so the same function runs against HEAD or a migration in progress. Each
check reports at most LIMIT rows.
"""

from __future__ import annotations

import psycopg

LIMIT = 20

NUMERIC_TABLES = (
    "public.stock_levels",
    "public.stock_movements",
    "public.lots",
    "public.order_items",
    "public.products",
    "private.product_costs",
    "private.cost_layers",
    "private.cost_layer_takes",
    "public.stock_count_lines",
)

LEDGER = """
select format('on_hand %s <> sum of movements %s for product %s at location %s',
  s.on_hand, m.total, coalesce(s.product_id, m.product_id), coalesce(s.location_id, m.location_id))
from public.stock_levels as s
full join (
  select product_id, location_id, sum(quantity) as total
  from public.stock_movements group by product_id, location_id
) as m on m.product_id = s.product_id and m.location_id = s.location_id
where coalesce(s.on_hand, 0) <> coalesce(m.total, 0)
limit {limit}
"""

LEVEL_BOUNDS = """
select format('stock level out of bounds: on_hand %s, reserved %s for product %s at location %s',
  s.on_hand, s.reserved, s.product_id, s.location_id)
from public.stock_levels as s
where s.on_hand < 0 or s.reserved < 0 or s.reserved > s.on_hand
limit {limit}
"""

LOT_MOVEMENTS = """
select format('lot %s (%s) holds %s but its movements sum to %s', l.id, l.lot_number,
  l.quantity, coalesce(m.total, 0))
from public.lots as l
left join (
  select lot_id, sum(quantity) as total
  from public.stock_movements where lot_id is not null group by lot_id
) as m on m.lot_id = l.id
where l.quantity <> coalesce(m.total, 0) or l.quantity < 0
limit {limit}
"""

LOTS_WITHIN_STOCK = """
select format('lots sum to %s > on_hand %s for product %s at location %s',
  l.total, coalesce(s.on_hand, 0), l.product_id, l.location_id)
from (
  select product_id, location_id, sum(quantity) as total
  from public.lots group by product_id, location_id
) as l
left join public.stock_levels as s
  on s.product_id = l.product_id and s.location_id = l.location_id
where l.total > coalesce(s.on_hand, 0)
limit {limit}
"""

RESERVED = """
select format('reserved %s <> open confirmed sales lines %s for product %s at location %s',
  coalesce(s.reserved, 0), coalesce(o.open, 0), coalesce(s.product_id, o.product_id),
  coalesce(s.location_id, o.location_id))
from (select * from public.stock_levels where reserved <> 0) as s
full join (
  select i.product_id, o.location_id, sum(i.quantity - {fulfilled}) as open
  from public.orders as o
  inner join public.order_items as i on i.order_id = o.id
  where o.kind = 'sales' and o.status in ('confirmed', 'partially_fulfilled')
  group by i.product_id, o.location_id
) as o on o.product_id = s.product_id and o.location_id = s.location_id
where coalesce(s.reserved, 0) <> coalesce(o.open, 0)
limit {limit}
"""

FIFO_LAYERS = """
select format('cost layers remaining %s <> on_hand %s for product %s at location %s',
  coalesce(c.remaining, 0), coalesce(s.on_hand, 0), coalesce(s.product_id, c.product_id),
  coalesce(s.location_id, c.location_id))
from (select * from public.stock_levels where on_hand <> 0) as s
full join (
  select product_id, location_id, sum(remaining) as remaining
  from private.cost_layers group by product_id, location_id
) as c on c.product_id = s.product_id and c.location_id = s.location_id
where coalesce(s.on_hand, 0) <> coalesce(c.remaining, 0)
limit {limit}
"""

FIFO_LAYER_BOUNDS = """
select format('cost layer %s out of bounds: remaining %s (worth %s) of %s at unit cost %s',
  c.id, c.remaining, c.remaining_value, c.quantity, c.unit_cost)
from private.cost_layers as c
where c.remaining < 0 or c.remaining > c.quantity or c.unit_cost < 0 or c.remaining_value < 0
  or (c.remaining = 0 and c.remaining_value <> 0)
limit {limit}
"""

FIFO_VALUE = """
select format('cost layers worth %s <> sum of fifo_value %s for product %s at location %s',
  coalesce(c.value, 0), m.value, m.product_id, m.location_id)
from (
  select product_id, location_id, sum(fifo_value) as value
  from public.stock_movements
  group by product_id, location_id
  having count(*) = count(fifo_value)
) as m
left join (
  select product_id, location_id, sum(remaining_value) as value
  from private.cost_layers group by product_id, location_id
) as c on c.product_id = m.product_id and c.location_id = m.location_id
where coalesce(c.value, 0) <> m.value
limit {limit}
"""

WAC = """
select format('product_costs quantity %s value %s but on_hand sums to %s for product %s',
  c.quantity, c.value, coalesce(s.on_hand, 0), coalesce(c.product_id, s.product_id))
from private.product_costs as c
full join (
  select product_id, sum(on_hand) as on_hand
  from public.stock_levels group by product_id having sum(on_hand) <> 0
) as s on s.product_id = c.product_id
where coalesce(c.quantity, 0) <> coalesce(s.on_hand, 0)
  or c.value < 0 or (c.quantity = 0 and c.value <> 0)
limit {limit}
"""

WAC_VALUE = """
select format('product_costs value %s <> sum of wac_value %s for product %s',
  coalesce(c.value, 0), m.value, m.product_id)
from (
  select product_id, sum(wac_value) as value
  from public.stock_movements
  group by product_id
  having count(*) = count(wac_value)
) as m
left join private.product_costs as c on c.product_id = m.product_id
where coalesce(c.value, 0) <> m.value
limit {limit}
"""


def _columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """{column: data type} of a table, empty when it does not exist."""
    schema, name = table.split(".")
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (schema, name),
    ).fetchall()
    return dict(rows)


def _non_finite(conn: psycopg.Connection, table: str, columns: list[str]) -> list[str]:
    """Violations for NaN / infinite values in the numeric columns of one table."""
    if not columns:
        return []
    checks = " or ".join(f"{c} in ('NaN'::numeric, 'Infinity', '-Infinity')" for c in columns)
    listing = ", ".join(f"'{c}', {c}::text" for c in columns)
    rows = conn.execute(
        f"select t.ctid::text, jsonb_build_object({listing})::text"
        f" from {table} as t where {checks} limit {LIMIT}"
    ).fetchall()
    return [f"non-finite number in {table} row {ctid}: {values}" for ctid, values in rows]


def violations(conn: psycopg.Connection) -> list[str]:
    """Every violation of the inventory invariant as conn sees the database (its own
    uncommitted writes included): a superuser connection, so RLS hides nothing."""
    found: list[str] = []
    tables = {table: _columns(conn, table) for table in NUMERIC_TABLES}
    movements = tables["public.stock_movements"]
    # How much of a sales line has shipped: done_quantity (partial fulfilment) when the column
    # exists (fulfilled_quantity was its working name), else nothing before the order is done.
    shipped = [
        c for c in ("done_quantity", "fulfilled_quantity") if c in tables["public.order_items"]
    ]
    fulfilled = f"coalesce(i.{shipped[0]}, 0)" if shipped else "0"
    queries = [LEDGER, LEVEL_BOUNDS, LOT_MOVEMENTS, LOTS_WITHIN_STOCK, RESERVED]
    if tables["private.cost_layers"]:
        queries += [FIFO_LAYERS, FIFO_LAYER_BOUNDS]
        if "fifo_value" in movements:
            queries.append(FIFO_VALUE)
    if tables["private.product_costs"]:
        queries.append(WAC)
        if "wac_value" in movements:
            queries.append(WAC_VALUE)
    for query in queries:
        text = query.format(limit=LIMIT, fulfilled=fulfilled)
        found += [row[0] for row in conn.execute(text).fetchall()]
    for table, columns in tables.items():
        numeric = [c for c, kind in columns.items() if kind == "numeric"]
        found += _non_finite(conn, table, numeric)
    return found


def inventory_violations(database_url: str) -> list[str]:
    """Every violation of the inventory invariant in the database (empty when it holds)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("set transaction read only")
        try:
            return violations(conn)
        finally:
            conn.rollback()
