"""SQL that generates one organization's data set, step by step, entirely in the database.

Every statement takes the named parameters of `OrgSpec` (see proxy.local.seeding). Randomness is a
seeded hash of a key (`pg_temp.rnd(seed, key)` in [0, 1)), and ids are md5 uuids of the seed
and a key, so the same seed gives the same rows. Dates are days before `until` (UTC).
Run inside one transaction with session_replication_role = replica: the bulk load writes the
ledger, stock levels, lots and costing directly and keeps the full inventory invariant itself
(tests/support/invariant.py): on_hand = sum of movements (receipts at the start of each quarter
cover that quarter's sales, so stock is never negative); a perishable product's stock at a
location is one lot named by every one of its movements, so the lot holds exactly what they
moved; each product has one cost (the catalog cost), so every movement's WAC and FIFO value is
quantity x cost, the average never moves, and the FIFO layers (one per inbound movement) are
consumed oldest first in closed form: a layer keeps what the location's total outflow did not
reach, and cost_layer_takes records the overlap of each outbound movement with each layer.
"""

from __future__ import annotations

HELPERS = """
create or replace function pg_temp.rnd(seed bigint, key text) returns double precision
language sql immutable as
$$ select (hashtextextended(key, seed) & 4503599627370495)::float8 / 4503599627370496.0 $$;
create or replace function pg_temp.uid(seed bigint, key text) returns uuid
language sql immutable as $$ select md5(seed::text || ':' || key)::uuid $$;
"""

ORGANIZATION = """
insert into public.organizations (id, name, slug)
values (%(org)s::uuid, %(name)s, %(slug)s);
insert into public.settings (organization_id, value)
values (%(org)s::uuid, '{"currency": "USD", "service_level": 0.95, "expiry_warning_days": 30}');
insert into public.memberships (user_id, organization_id, role)
values (%(owner)s::uuid, %(org)s::uuid, 'owner');
"""

CATALOG = """
create temp table seed_locations on commit drop as
select i, pg_temp.uid(%(seed)s, %(slug)s || ':loc:' || i) as id
from generate_series(1, %(locations)s) as i;
insert into public.locations (id, organization_id, name, code, kind)
select id, %(org)s::uuid,
  case when i = 1 then 'Central warehouse' else 'Store ' || (i - 1) end,
  case when i = 1 then 'WH1' else 'ST' || (i - 1) end,
  case when i = 1 then 'warehouse' else 'store' end
from seed_locations;

create temp table seed_categories on commit drop as
select t.i as top, j as child,
  pg_temp.uid(%(seed)s, %(slug)s || ':cat:' || t.i || ':' || j) as id,
  pg_temp.uid(%(seed)s, %(slug)s || ':cat:' || t.i || ':0') as parent,
  case when j = 0 then t.name else (array['Basics', 'Premium'])[j] end as name
from unnest(array['Beverages', 'Snacks', 'Household', 'Personal care', 'Produce', 'Frozen'])
  with ordinality as t (name, i)
cross join generate_series(0, 2) as j;
insert into public.categories (id, organization_id, parent_id, name)
select id, %(org)s::uuid, case when child > 0 then parent end, name
from seed_categories order by child, top;

insert into public.suppliers (id, organization_id, name, email, lead_time_days, currency)
select pg_temp.uid(%(seed)s, %(slug)s || ':sup:' || i), %(org)s::uuid, 'Supplier ' || i,
  'orders' || i || '@supplier.example',
  2 + floor(pg_temp.rnd(%(seed)s, %(slug)s || ':lead:' || i) * 20)::int, 'USD'
from generate_series(1, %(suppliers)s) as i;

create temp table seed_products on commit drop as
select i as rank, pg_temp.uid(%(seed)s, %(slug)s || ':prod:' || i) as id,
  round((2 + pg_temp.rnd(%(seed)s, %(slug)s || ':price:' || i) ^ 2 * 200)::numeric, 2) as price,
  pg_temp.rnd(%(seed)s, %(slug)s || ':margin:' || i) as margin,
  pg_temp.uid(%(seed)s, %(slug)s || ':sup:'
    || 1 + floor(pg_temp.rnd(%(seed)s, %(slug)s || ':ps:' || i) * %(suppliers)s)::int)
    as supplier_id,
  pg_temp.uid(%(seed)s, %(slug)s || ':cat:'
    || 1 + floor(pg_temp.rnd(%(seed)s, %(slug)s || ':pc:' || i) * 6)::int || ':'
    || floor(pg_temp.rnd(%(seed)s, %(slug)s || ':pd:' || i) * 3)::int) as category_id,
  pg_temp.rnd(%(seed)s, %(slug)s || ':perish:' || i) < 0.1 as perishable,
  pg_temp.rnd(%(seed)s, %(slug)s || ':arch:' || i) < 0.01 as archived
from generate_series(1, %(products)s) as i;
insert into public.products (
  id, organization_id, category_id, supplier_id, sku, barcode, name, price, unit_cost,
  low_stock_threshold, reorder_point, active, archived_at
)
select id, %(org)s::uuid, category_id, supplier_id, 'SKU-' || lpad(rank::text, 6, '0'),
  '20' || lpad((rank * 7919)::text, 11, '0'),
  (array['Classic', 'Fresh', 'Organic', 'Value', 'Deluxe', 'Mini'])[1 + mod(rank, 6)] || ' '
    || (array['tea', 'crisps', 'soap', 'juice', 'towels', 'rice', 'yogurt', 'candles'])
    [1 + mod(rank / 6, 8)] || ' ' || rank,
  price, round(price * (0.45 + 0.3 * margin)::numeric, 4),
  case when mod(rank, 5) = 0 then 5 end, case when mod(rank, 10) = 3 then 150 end, not archived,
  case when archived then %(until)s::timestamptz - interval '20 days' end
from seed_products;
"""

SALES = """
create temp table seed_orders on commit drop as
select pg_temp.uid(%(seed)s, %(slug)s || ':so:' || d || ':' || l.i || ':' || j) as id,
  l.id as location_id, d, j,
  %(start)s::timestamptz + make_interval(days => d, hours => 8,
    mins => floor(pg_temp.rnd(%(seed)s, %(slug)s || ':t:' || d || ':' || l.i || ':' || j)
    * 720)::int) as created_at
from generate_series(0, %(days)s - 1) as d
cross join seed_locations as l
cross join lateral generate_series(1, round(%(orders_per_day)s / %(locations)s::float8
  * (1 + 0.25 * cos(2 * pi() * (extract(isodow from %(start)s::date + d) - 6) / 7))
  * (1 + 0.3 * sin(2 * pi() * (extract(doy from %(start)s::date + d) - 80) / 365.0)
     + case when extract(month from %(start)s::date + d) = 12 then 0.3 else 0 end)
  * (0.7 + 0.6 * pg_temp.rnd(%(seed)s, %(slug)s || ':n:' || d || ':' || l.i)))::int) as j;

create temp table seed_lines on commit drop as
select distinct on (o.id, p.id) o.id as order_id, p.id as product_id, k, p.price,
  round(p.price * (0.45 + 0.3 * p.margin)::numeric, 4) as unit_cost,
  1 + floor(pg_temp.rnd(%(seed)s, o.id::text || ':q' || k) ^ 3 * 6)::int as quantity
from seed_orders as o
cross join lateral generate_series(1,
  1 + floor(pg_temp.rnd(%(seed)s, o.id::text || ':lines') * 3.4)::int) as k
inner join seed_products as p on p.rank = least(%(products)s,
  1 + floor(%(products)s * pg_temp.rnd(%(seed)s, o.id::text || ':p' || k) ^ 2.5)::int)
where not p.archived
order by o.id, p.id, k;
"""

PURCHASES = """
create temp table seed_receipts on commit drop as
select s.product_id, o.location_id, o.d / 91 as quarter,
  sum(s.quantity) + floor(pg_temp.rnd(%(seed)s, s.product_id::text || o.location_id::text
    || (o.d / 91)) * 10)::int as quantity
from seed_lines as s inner join seed_orders as o on s.order_id = o.id
group by s.product_id, o.location_id, o.d / 91;

create temp table seed_purchases on commit drop as
select pg_temp.uid(%(seed)s, %(slug)s || ':po:' || p.supplier_id || r.location_id || r.quarter)
    as id, p.supplier_id, r.location_id, r.quarter,
  %(start)s::timestamptz + make_interval(days => r.quarter * 91, hours => 6) as received_at
from seed_receipts as r inner join seed_products as p on r.product_id = p.id
group by p.supplier_id, r.location_id, r.quarter;
"""

ORDERS = """
insert into public.orders (
  id, organization_id, kind, status, number, supplier_id, location_id, customer_name,
  confirmed_at, completed_at, created_at, updated_at
)
select id, %(org)s::uuid, kind, case when kind = 'sales' then 'fulfilled' else 'received' end,
  row_number() over (order by created_at, id),
  supplier_id, location_id, customer, created_at + interval '5 minutes',
  created_at + interval '2 hours', created_at, created_at + interval '2 hours'
from (
  select id, 'sales' as kind, null::uuid as supplier_id, location_id,
    'Customer ' || (1 + floor(pg_temp.rnd(%(seed)s, id::text) * 5000)::int) as customer,
    created_at
  from seed_orders
  union all
  select id, 'purchase', supplier_id, location_id, null, received_at - interval '2 hours'
  from seed_purchases
) as o;
insert into private.order_numbers (organization_id, last_number)
select %(org)s::uuid, count(*) from public.orders where organization_id = %(org)s::uuid;

insert into public.order_items (
  id, organization_id, order_id, product_id, line_no, quantity, unit_price, unit_cost, created_at,
  done_quantity
)
select pg_temp.uid(%(seed)s, order_id::text || product_id::text), %(org)s::uuid, order_id,
  product_id,
  row_number() over (partition by order_id order by k, product_id), quantity, price, unit_cost,
  o.created_at, quantity
from seed_lines inner join seed_orders as o on seed_lines.order_id = o.id
union all
select pg_temp.uid(%(seed)s, po.id::text || r.product_id::text), %(org)s::uuid, po.id, r.product_id,
  row_number() over (partition by po.id order by r.product_id), r.quantity,
  round(p.price * (0.45 + 0.3 * p.margin)::numeric, 2),
  round(p.price * (0.45 + 0.3 * p.margin)::numeric, 4), po.received_at, r.quantity
from seed_receipts as r
inner join seed_products as p on r.product_id = p.id
inner join seed_purchases as po
  on p.supplier_id = po.supplier_id and r.location_id = po.location_id
  and r.quarter = po.quarter;
"""

LEDGER = """
insert into public.stock_movements (
  organization_id, product_id, location_id, lot_id, kind, quantity, unit_cost, order_id, reason,
  created_by, created_at, wac_value, fifo_value
)
select %(org)s::uuid, m.product_id, m.location_id,
  case when p.perishable
    then pg_temp.uid(%(seed)s, m.product_id::text || m.location_id::text || ':lot') end,
  m.kind, m.quantity, m.unit_cost, m.order_id, m.reason, null, m.at,
  m.quantity * m.unit_cost, m.quantity * m.unit_cost
from (
  select p.id as product_id, l.id as location_id, 'adjustment' as kind,
    floor(pg_temp.rnd(%(seed)s, p.id::text || l.id::text || ':open') * 40)::numeric as quantity,
    round(p.price * (0.45 + 0.3 * p.margin)::numeric, 4) as unit_cost, null::uuid as order_id,
    'opening stock count' as reason, %(start)s::timestamptz - interval '1 day' as at
  from seed_products as p cross join seed_locations as l
  union all
  select i.product_id, o.location_id, 'receipt', i.quantity, i.unit_cost, o.id, null,
    o.completed_at
  from public.orders as o inner join public.order_items as i on o.id = i.order_id
  where o.organization_id = %(org)s::uuid and o.kind = 'purchase'
  union all
  select i.product_id, o.location_id, 'sale', -i.quantity, i.unit_cost, o.id, null,
    o.completed_at
  from public.orders as o inner join public.order_items as i on o.id = i.order_id
  where o.organization_id = %(org)s::uuid and o.kind = 'sales'
) as m
inner join seed_products as p on m.product_id = p.id
where m.quantity <> 0
order by m.at, m.order_id, m.product_id, m.location_id;

insert into public.stock_levels (organization_id, product_id, location_id, on_hand, updated_at)
select %(org)s::uuid, product_id, location_id, sum(quantity), max(created_at)
from public.stock_movements where organization_id = %(org)s::uuid
group by product_id, location_id;

insert into public.lots (
  id, organization_id, product_id, location_id, lot_number, expiry_date, quantity, received_at,
  status
)
select pg_temp.uid(%(seed)s, s.product_id::text || s.location_id::text || ':lot'), %(org)s::uuid,
  s.product_id, s.location_id, 'LOT-' || p.rank || '-' || l.i,
  %(until)s::date + 1 + floor(pg_temp.rnd(%(seed)s, s.product_id::text || s.location_id::text
    || ':exp') * 150)::int, s.on_hand, f.first_at, 'available'
from public.stock_levels as s
inner join seed_products as p on s.product_id = p.id
inner join seed_locations as l on s.location_id = l.id
inner join (
  select product_id, location_id, min(created_at) as first_at
  from public.stock_movements where organization_id = %(org)s::uuid and lot_id is not null
  group by product_id, location_id
) as f on f.product_id = s.product_id and f.location_id = s.location_id
where s.organization_id = %(org)s::uuid and p.perishable;

insert into private.product_costs (product_id, organization_id, quantity, value, last_average)
select p.id, %(org)s::uuid, coalesce(s.on_hand, 0), coalesce(s.on_hand, 0) * p.unit_cost,
  p.unit_cost
from public.products as p
left join (
  select product_id, sum(on_hand) as on_hand
  from public.stock_levels where organization_id = %(org)s::uuid group by product_id
) as s on s.product_id = p.id
where p.organization_id = %(org)s::uuid;

insert into private.cost_layers (
  organization_id, product_id, location_id, received_at, quantity, remaining, remaining_value,
  unit_cost, movement_id
)
select %(org)s::uuid, product_id, location_id, created_at, quantity, remaining,
  remaining * unit_cost, unit_cost, id
from (
  select m.id, m.product_id, m.location_id, m.created_at, m.quantity, m.unit_cost,
    greatest(0, least(m.quantity, sum(m.quantity) over (
      partition by m.product_id, m.location_id order by m.created_at, m.id
    ) - coalesce(o.out, 0))) as remaining
  from public.stock_movements as m
  left join (
    select product_id, location_id, -sum(quantity) as out
    from public.stock_movements
    where organization_id = %(org)s::uuid and quantity < 0
    group by product_id, location_id
  ) as o on o.product_id = m.product_id and o.location_id = m.location_id
  where m.organization_id = %(org)s::uuid and m.quantity > 0
) as layers
order by created_at, id;

insert into private.cost_layer_takes (movement_id, layer_id, quantity, value)
select o.id, l.layer_id,
  least(l.upto, o.upto) - greatest(l.upto - l.quantity, o.upto - o.quantity),
  (least(l.upto, o.upto) - greatest(l.upto - l.quantity, o.upto - o.quantity)) * l.unit_cost
from (
  select m.id, m.product_id, m.location_id, -m.quantity as quantity,
    sum(-m.quantity) over (
      partition by m.product_id, m.location_id order by m.created_at, m.id
    ) as upto
  from public.stock_movements as m
  where m.organization_id = %(org)s::uuid and m.quantity < 0
) as o
inner join (
  select c.id as layer_id, c.product_id, c.location_id, c.quantity, c.unit_cost,
    sum(c.quantity) over (
      partition by c.product_id, c.location_id order by c.received_at, c.id
    ) as upto
  from private.cost_layers as c
  where c.organization_id = %(org)s::uuid
) as l
  on l.product_id = o.product_id and l.location_id = o.location_id
  and l.upto - l.quantity < o.upto and o.upto - o.quantity < l.upto;

insert into private.low_stock_states (product_id, location_id, organization_id, low)
select s.product_id, s.location_id, %(org)s::uuid,
  p.active and p.archived_at is null
  and s.on_hand - s.reserved <= coalesce(p.low_stock_threshold, 10)
from public.stock_levels as s inner join public.products as p on s.product_id = p.id
where s.organization_id = %(org)s::uuid;
"""

STEPS = (
    ("organization", ORGANIZATION),
    ("catalog", CATALOG),
    ("sales", SALES),
    ("purchases", PURCHASES),
    ("orders", ORDERS),
    ("ledger", LEDGER),
)
