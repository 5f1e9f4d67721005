-- Analytics read the costing facts (issue 12): stock value and cost of goods sold come from the
-- ledger (stock_movements.wac_value / fifo_value), private.product_costs (moving weighted
-- average) and private.cost_layers (FIFO), by both methods, never from the hand-edited catalog
-- cost products.unit_cost. The analytics functions pick the method: their argument, else the
-- organization setting costing_method (private.costing_method), else weighted_average.
--
-- Every analytics materialized view is dropped and recreated: daily_sales, daily_stock_changes,
-- organization_summary, product_stock, reorder_inputs and stock_by_group read products.unit_cost,
-- and the other three (location_daily_sales, category_daily_sales, product_sales_stats) read
-- daily_sales. Same names, unique indexes (refresh concurrently), privileges (none to clients)
-- and refresh order as before (private.refresh_analytics_views). Then, with nothing depending on
-- it any more, products.unit_cost keeps exactly what the client sent: at most 4 decimals, refused
-- rather than rounded (numeric(14, 4) rounded 1.23456 to 1.2346 silently).
--
-- Movements written before costing existed (wac_value null) fall back to the cost recorded with
-- them, quantity * stock_movements.unit_cost (else 0): for a sale, the order functions of that
-- time set it to the line's order_items.unit_cost. This migration must not call functions from
-- sql/functions (they are applied after the migrations): rules such as private.lot_usable are
-- written out inline.

drop materialized view private.reorder_inputs;

drop materialized view private.stock_by_group;

drop materialized view private.product_stock;

drop materialized view private.product_sales_stats;

drop materialized view private.category_daily_sales;

drop materialized view private.location_daily_sales;

drop materialized view private.organization_summary;

drop materialized view private.daily_stock_changes;

drop materialized view private.daily_sales;

-- The catalog cost: exact, finite, at most 4 decimals ---------------------------------------------

alter table public.products alter column unit_cost type numeric;

alter table public.products
add constraint products_unit_cost_scale check (
  unit_cost = round(unit_cost, 4) and unit_cost < 10000000000
);

-- Daily sales per product, location and day -------------------------------------------------------

create materialized view private.daily_sales as
with
fulfilled as (
  -- Sales orders fulfilled (or closed short), on the UTC day of completion.
  select
    o.id,
    o.organization_id,
    o.location_id,
    (o.completed_at at time zone 'UTC')::date as day  -- noqa: RF04
  from public.orders as o
  where o.kind = 'sales' and o.status = 'fulfilled'
),

facts as (
  -- What the lines sold.
  select
    f.organization_id,
    i.product_id,
    f.location_id,
    f.day,
    i.done_quantity as units,
    i.done_quantity * i.unit_price as revenue,
    0 as cogs_wac,
    0 as cogs_fifo,
    i.order_id
  from fulfilled as f
  inner join public.order_items as i on f.id = i.order_id
  where i.done_quantity > 0
  union all
  -- What the order's sale movements took out of stock, on the order's day so that revenue and
  -- cost match (a partial fulfilment's earlier movements included).
  select
    f.organization_id,
    m.product_id,
    f.location_id,
    f.day,
    0 as units,
    0 as revenue,
    -coalesce(m.wac_value, m.quantity * m.unit_cost, 0) as cogs_wac,
    -coalesce(m.fifo_value, m.quantity * m.unit_cost, 0) as cogs_fifo,
    null as order_id
  from fulfilled as f
  inner join public.stock_movements as m on f.id = m.order_id
  where m.kind = 'sale'
  union all
  -- Customer returns (into stock) give their cost back on the day they happen.
  select
    m.organization_id,
    m.product_id,
    m.location_id,
    (m.created_at at time zone 'UTC')::date as day,  -- noqa: RF04
    0 as units,
    0 as revenue,
    -coalesce(m.wac_value, m.quantity * m.unit_cost, 0) as cogs_wac,
    -coalesce(m.fifo_value, m.quantity * m.unit_cost, 0) as cogs_fifo,
    null as order_id
  from public.stock_movements as m
  where m.kind = 'return' and m.quantity > 0
)

select
  f.organization_id,
  f.product_id,
  f.location_id,
  f.day,
  sum(f.units) as units,
  sum(f.revenue) as revenue,
  sum(f.cogs_wac) as cogs_wac,
  sum(f.cogs_fifo) as cogs_fifo,
  count(distinct f.order_id) as order_count
from facts as f
group by f.organization_id, f.product_id, f.location_id, f.day;

comment on materialized view private.daily_sales is
'Sales per organization, product, location and UTC day: units and revenue (done_quantity *
unit_price) of the sales orders fulfilled (or closed short) that day, gross of returns (NIMBUS
records no refunds); cost of goods sold by both costing methods, cogs_wac and cogs_fifo: what the
orders'' sale movements took out of stock (-wac_value, -fifo_value; counted on the order''s
completion day, so that revenue and cost match), less the value customer returns (kind return,
quantity > 0) brought back, on the day of the return (a row with units 0 when nothing was sold
that day). Movements older than costing (values null): quantity * the movement''s unit_cost, which
the order functions of that time set equal to order_items.unit_cost. order_count: orders with the
product that day.';

create unique index daily_sales_key on private.daily_sales (
  organization_id, product_id, location_id, day
);

create index daily_sales_day_idx on private.daily_sales (organization_id, day);

-- Net stock change per organization and day -----------------------------------------------------

create materialized view private.daily_stock_changes as
select
  m.organization_id,
  (m.created_at at time zone 'UTC')::date as day,  -- noqa: RF04
  sum(m.quantity) filter (where m.quantity > 0) as units_in,
  coalesce(-sum(m.quantity) filter (where m.quantity < 0), 0) as units_out,
  sum(m.quantity) as net_units,
  sum(coalesce(m.wac_value, m.quantity * m.unit_cost, 0)) as net_value_wac,
  sum(coalesce(m.fifo_value, m.quantity * m.unit_cost, 0)) as net_value_fifo
from public.stock_movements as m
group by m.organization_id, (m.created_at at time zone 'UTC')::date;

comment on materialized view private.daily_stock_changes is
'Net stock change per organization and UTC day: units in, out and net, and the net value by
both costing methods (sum of the movements'' wac_value and fifo_value; rows older than costing:
quantity * their unit_cost). Subtracted from the current stock value (organization_summary) it
gives the stock value at the end of any past day.';

create unique index daily_stock_changes_key on private.daily_stock_changes (
  organization_id, day
);

-- One row per organization: the dashboard's heavy totals ------------------------------------------

create materialized view private.organization_summary as
with
config as (
  select
    o.id as organization_id,
    coalesce((s.value ->> 'default_low_stock_threshold')::integer, 10) as default_threshold,
    coalesce((s.value ->> 'expiry_warning_days')::integer, 30) as expiry_days
  from public.organizations as o
  left join public.settings as s on o.id = s.organization_id
),

catalog as (
  select
    p.organization_id,
    count(*) as products,
    count(*) filter (where p.active and p.archived_at is null) as active_products
  from public.products as p
  group by p.organization_id
),

units as (
  select
    l.organization_id,
    sum(l.on_hand) as stock_units
  from public.stock_levels as l
  group by l.organization_id
),

wac as (
  select
    c.organization_id,
    sum(c.value) as stock_value_wac
  from private.product_costs as c
  group by c.organization_id
),

fifo as (
  select
    cl.organization_id,
    sum(cl.remaining_value) as stock_value_fifo
  from private.cost_layers as cl
  where cl.remaining > 0
  group by cl.organization_id
),

-- Stock in lots that cannot be sold (the rule of private.lot_usable, written out: functions are
-- applied after the migrations).
unusable as (
  select
    l.product_id,
    l.location_id,
    sum(l.quantity) as quantity
  from public.lots as l
  where
    l.quantity > 0
    and not (l.status = 'available' and (l.expiry_date is null or l.expiry_date >= current_date))
  group by l.product_id, l.location_id
),

-- Same rule as public.low_stock_products(): one per (active, unarchived product, location)
-- stock level whose available quantity is at or below the product's threshold.
low as (
  select
    l.organization_id,
    count(*) as low_stock_count
  from public.stock_levels as l
  inner join public.products as p on l.product_id = p.id
  inner join config as c on l.organization_id = c.organization_id
  left join unusable as u on l.product_id = u.product_id and l.location_id = u.location_id
  where
    p.active and p.archived_at is null
    and l.on_hand - l.reserved - coalesce(u.quantity, 0)
    <= coalesce(p.low_stock_threshold, c.default_threshold)
  group by l.organization_id
),

-- Same rule as public.expiring_soon(): usable lots with stock expiring within the window.
expiring as (
  select
    l.organization_id,
    count(*) as expiring_count
  from public.lots as l
  inner join config as c on l.organization_id = c.organization_id
  where
    l.quantity > 0
    and l.status = 'available'
    and l.expiry_date >= current_date
    and l.expiry_date <= current_date + c.expiry_days
  group by l.organization_id
),

sales as (
  select
    d.organization_id,
    d.product_id,
    sum(d.units) as units,
    sum(d.revenue) as revenue,
    sum(d.cogs_wac) as cogs_wac,
    sum(d.cogs_fifo) as cogs_fifo
  from private.daily_sales as d
  where d.day > current_date - 30
  group by d.organization_id, d.product_id
),

ranked as (
  select
    s.organization_id,
    s.product_id,
    s.units,
    s.revenue,
    s.cogs_wac,
    s.cogs_fifo,
    row_number() over (
      partition by s.organization_id order by s.revenue desc, s.product_id asc
    ) as rank
  from sales as s
),

sales_totals as (
  select
    r.organization_id,
    sum(r.units) as units_30d,
    sum(r.revenue) as revenue_30d,
    sum(r.cogs_wac) as cogs_wac_30d,
    sum(r.cogs_fifo) as cogs_fifo_30d,
    jsonb_agg(
      jsonb_build_object(
        'product_id', r.product_id,
        'sku', p.sku,
        'name', p.name,
        'units', r.units,
        'revenue', r.revenue
      )
      order by r.rank
    ) filter (where r.rank <= 5 and r.units > 0) as top_products
  from ranked as r
  inner join public.products as p on r.product_id = p.id
  group by r.organization_id
)

select
  c.organization_id,
  coalesce(ca.products, 0) as products,
  coalesce(ca.active_products, 0) as active_products,
  (
    select count(*) from public.locations as l
    where l.organization_id = c.organization_id
  ) as locations,
  coalesce(un.stock_units, 0) as stock_units,
  coalesce(w.stock_value_wac, 0) as stock_value_wac,
  coalesce(f.stock_value_fifo, 0) as stock_value_fifo,
  coalesce(lo.low_stock_count, 0) as low_stock_count,
  coalesce(e.expiring_count, 0) as expiring_count,
  coalesce(sa.units_30d, 0) as units_30d,
  coalesce(sa.revenue_30d, 0) as revenue_30d,
  coalesce(sa.cogs_wac_30d, 0) as cogs_wac_30d,
  coalesce(sa.cogs_fifo_30d, 0) as cogs_fifo_30d,
  coalesce(sa.top_products, '[]'::jsonb) as top_products
from config as c
left join catalog as ca on c.organization_id = ca.organization_id
left join units as un on c.organization_id = un.organization_id
left join wac as w on c.organization_id = w.organization_id
left join fifo as f on c.organization_id = f.organization_id
left join low as lo on c.organization_id = lo.organization_id
left join expiring as e on c.organization_id = e.organization_id
left join sales_totals as sa on c.organization_id = sa.organization_id;

comment on materialized view private.organization_summary is
'Per organization, as of the last refresh: product and location counts, stock units, stock value
by both costing methods (stock_value_wac: sum of private.product_costs.value; stock_value_fifo:
remaining value of private.cost_layers), low-stock (product x location, on available) and
expiring-lot counts (the rules of low_stock_products and expiring_soon), 30-day units, revenue
and cost of goods sold by both methods, and the top 5 products by 30-day revenue.';

create unique index organization_summary_key on private.organization_summary (organization_id);

-- Sales per organization, location and day --------------------------------------------------------

create materialized view private.location_daily_sales as
select
  d.organization_id,
  d.location_id,
  d.day,
  sum(d.units) as units,
  sum(d.revenue) as revenue,
  sum(d.cogs_wac) as cogs_wac,
  sum(d.cogs_fifo) as cogs_fifo,
  sum(d.order_count) as order_lines,
  count(*) as facts
from private.daily_sales as d
group by d.organization_id, d.location_id, d.day;

comment on materialized view private.location_daily_sales is
'private.daily_sales summed per organization, location and UTC day: units, revenue, cogs_wac,
cogs_fifo, order_lines (order x product pairs) and facts (the number of daily_sales rows summed,
so that callers can tell how many product rows a period holds). Summed over locations it gives
the organization''s daily totals.';

create unique index location_daily_sales_key on private.location_daily_sales (
  organization_id, day, location_id
);

-- Sales per organization, category and day -------------------------------------------------------

create materialized view private.category_daily_sales as
select
  d.organization_id,
  -- The nil uuid stands for "uncategorized" (a unique index needs a value).
  coalesce(p.category_id, '00000000-0000-0000-0000-000000000000'::uuid) as category_id,
  d.day,
  sum(d.units) as units,
  sum(d.revenue) as revenue,
  sum(d.cogs_wac) as cogs_wac,
  sum(d.cogs_fifo) as cogs_fifo,
  sum(d.order_count) as order_lines,
  count(*) as facts
from private.daily_sales as d
inner join public.products as p on d.product_id = p.id
group by
  d.organization_id,
  coalesce(p.category_id, '00000000-0000-0000-0000-000000000000'::uuid),
  d.day;

comment on materialized view private.category_daily_sales is
'private.daily_sales summed per organization, product category (as of the refresh; the nil uuid
for uncategorized products) and UTC day: units, revenue, cogs_wac, cogs_fifo, order_lines and
facts.';

create unique index category_daily_sales_key on private.category_daily_sales (
  organization_id, day, category_id
);

-- Per product: all-time revenue and the 90-day demand statistics ------------------------------

create materialized view private.product_sales_stats as
with
bounds as (
  select (now() at time zone 'UTC')::date - 1 as demand_to
),

totals as (
  select
    d.organization_id,
    d.product_id,
    sum(d.revenue) as revenue_total,
    coalesce(sum(d.revenue) filter (where d.day > b.demand_to - 365), 0) as revenue_365d,
    coalesce(sum(d.revenue) filter (where d.day > b.demand_to - 90), 0) as revenue_90d,
    coalesce(sum(d.revenue) filter (where d.day > b.demand_to - 30), 0) as revenue_30d
  from private.daily_sales as d
  cross join bounds as b
  group by d.organization_id, d.product_id
),

daily as (
  -- Days with sales (a day with only a customer return has units 0: no demand).
  select
    d.product_id,
    d.day,
    sum(d.units)::double precision as units
  from private.daily_sales as d
  cross join bounds as b
  where d.day between b.demand_to - 89 and b.demand_to and d.units > 0
  group by d.product_id, d.day
),

demand as (
  select
    dy.product_id,
    count(*) as demand_days,
    sum(dy.units) as demand_units,
    sum(dy.units * dy.units) as demand_squares
  from daily as dy
  group by dy.product_id
)

select
  t.organization_id,
  t.product_id,
  t.revenue_total,
  t.revenue_365d,
  t.revenue_90d,
  t.revenue_30d,
  b.demand_to,
  coalesce(dm.demand_days, 0) as demand_days,
  coalesce(dm.demand_units, 0) as demand_units,
  coalesce(dm.demand_squares, 0) as demand_squares
from totals as t
cross join bounds as b
left join demand as dm on t.product_id = dm.product_id;

comment on materialized view private.product_sales_stats is
'Per organization and product with fulfilled sales: revenue over all days (revenue_total) and
over the days after demand_to - 365, - 90 and - 30 (revenue_365d, _90d, _30d, later days
included), upper bounds of its revenue over any period inside them, with which sales_analytics
finds the top products of a period without summing every product; and, over the 90 UTC days
ending demand_to (the day before the refresh), the number of days with sales, the sum of daily
units and the sum of their squares (float8), from which reorder_suggestions takes mean and
standard deviation.';

create unique index product_sales_stats_key on private.product_sales_stats (
  organization_id, product_id
);

create index product_sales_stats_revenue_idx on private.product_sales_stats (
  organization_id, revenue_total desc
);

create index product_sales_stats_revenue_365d_idx on private.product_sales_stats (
  organization_id, revenue_365d desc
);

create index product_sales_stats_revenue_90d_idx on private.product_sales_stats (
  organization_id, revenue_90d desc
);

create index product_sales_stats_revenue_30d_idx on private.product_sales_stats (
  organization_id, revenue_30d desc
);

-- Stock per product ------------------------------------------------------------------------------

create materialized view private.product_stock as
with
layers as (
  select
    cl.product_id,
    sum(cl.remaining_value) as value  -- noqa: RF04
  from private.cost_layers as cl
  where cl.remaining > 0
  group by cl.product_id
)

select
  l.organization_id,
  l.product_id,
  p.category_id,
  sum(l.on_hand) as on_hand,
  sum(l.reserved) as reserved,
  coalesce(max(c.value), 0) as value_wac,
  coalesce(max(f.value), 0) as value_fifo
from public.stock_levels as l
inner join public.products as p on l.product_id = p.id
left join private.product_costs as c on l.product_id = c.product_id
left join layers as f on l.product_id = f.product_id
group by l.organization_id, l.product_id, p.category_id;

comment on materialized view private.product_stock is
'Stock of each product with stock levels, summed over locations, as of the refresh: on_hand,
reserved, and its value by both costing methods: value_wac = private.product_costs.value (on
hand * moving weighted average cost), value_fifo = remaining value of its FIFO cost layers;
with its category at that time.';

create unique index product_stock_key on private.product_stock (organization_id, product_id);

-- Reorder inputs per product --------------------------------------------------------------------

create materialized view private.reorder_inputs as
select
  p.organization_id,
  p.id as product_id,
  p.sku,
  p.name,
  p.supplier_id,
  p.unit_cost,
  p.reorder_point,
  p.safety_stock,
  s.demand_to,
  coalesce(s.demand_days, 0) as demand_days,
  coalesce(s.demand_units, 0) as demand_units,
  coalesce(s.demand_squares, 0) as demand_squares,
  -- Mean and sample standard deviation of daily units over the 90 days, zero days included.
  coalesce(s.demand_units, 0) / 90 as mean,
  sqrt(greatest(
    (coalesce(s.demand_squares, 0) - coalesce(s.demand_units, 0) ^ 2 / 90) / 89, 0
  )) as sigma,
  coalesce(st.on_hand, 0) as on_hand,
  coalesce(st.reserved, 0) as reserved
from public.products as p
left join private.product_sales_stats as s on p.id = s.product_id
left join private.product_stock as st on p.id = st.product_id
where
  p.active and p.archived_at is null and p.supplier_id is not null
  and (s.demand_days > 0 or p.reorder_point is not null);

comment on materialized view private.reorder_inputs is
'What reorder_suggestions needs per product, as of the refresh: the active, unarchived products
with a supplier that sold in the 90-day demand window or have a reorder_point, with their
reorder parameters, sku, name and catalog unit_cost (the price a new purchase order line takes by
default: a purchase estimate, not a valuation), the window''s demand sums, mean and sample
standard deviation of daily units (from private.product_sales_stats) and their stock (from
private.product_stock). Supplier lead times, the service level and open purchase orders are read
live.';

create unique index reorder_inputs_key on private.reorder_inputs (organization_id, product_id);

-- Stock per category and per location ------------------------------------------------------------

create materialized view private.stock_by_group as
with
layers as (
  select
    cl.location_id,
    sum(cl.remaining_value) as value  -- noqa: RF04
  from private.cost_layers as cl
  where cl.remaining > 0
  group by cl.location_id
)

select
  s.organization_id,
  'category' as dimension,
  coalesce(s.category_id, '00000000-0000-0000-0000-000000000000'::uuid) as key,
  sum(s.on_hand) as units,
  sum(s.value_wac) as value_wac,
  sum(s.value_fifo) as value_fifo
from private.product_stock as s
where s.on_hand > 0 or s.value_wac > 0 or s.value_fifo > 0
group by
  s.organization_id,
  coalesce(s.category_id, '00000000-0000-0000-0000-000000000000'::uuid)
union all
select
  l.organization_id,
  'location' as dimension,
  l.location_id as key,
  sum(l.on_hand) as units,
  -- On hand x the product's average cost, rounded to 4 decimals per stock level: the rows of a
  -- location may not sum exactly to the product's value (product_costs.value).
  coalesce(sum(
    round(l.on_hand * c.value / nullif(c.quantity, 0), 4)
  ), 0) as value_wac,
  coalesce(max(f.value), 0) as value_fifo
from public.stock_levels as l
left join private.product_costs as c on l.product_id = c.product_id
left join layers as f on l.location_id = f.location_id
group by l.organization_id, l.location_id;

comment on materialized view private.stock_by_group is
'Stock units and value by both costing methods per organization and category (dimension
category: products with stock or value, key the category or the nil uuid for uncategorized; the
sums of private.product_stock) and per location (dimension location: every location with stock
levels; value_wac = on hand x the product''s moving average cost, rounded to 4 decimals per stock
level, so the locations may differ from the organization''s total by those roundings; value_fifo
= remaining value of the location''s FIFO cost layers, exact), as of the refresh.';

create unique index stock_by_group_key on private.stock_by_group (organization_id, dimension, key);

revoke all on table
private.daily_sales,
private.daily_stock_changes,
private.organization_summary,
private.location_daily_sales,
private.category_daily_sales,
private.product_sales_stats,
private.product_stock,
private.reorder_inputs,
private.stock_by_group
from public, anon, authenticated, service_role;

-- The views above were populated just now.
insert into private.analytics_refreshes as r (view, refreshed_at)
values
('private.daily_sales', now()),
('private.daily_stock_changes', now()),
('private.organization_summary', now()),
('private.location_daily_sales', now()),
('private.category_daily_sales', now()),
('private.product_sales_stats', now()),
('private.product_stock', now()),
('private.reorder_inputs', now()),
('private.stock_by_group', now())
on conflict (view) do update set refreshed_at = excluded.refreshed_at;

analyze
private.daily_sales,
private.daily_stock_changes,
private.organization_summary,
private.location_daily_sales,
private.category_daily_sales,
private.product_sales_stats,
private.product_stock,
private.reorder_inputs,
private.stock_by_group;
