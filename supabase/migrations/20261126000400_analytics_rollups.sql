-- NIMBUS analytics, second step: coarser rollups of private.daily_sales and per-product stock.
--
-- The analytics RPCs read the coarsest view their question allows instead of aggregating
-- private.daily_sales (product x location x day) or public.stock_levels on each call. Each view
-- has a unique index so private.refresh_analytics_views refreshes it concurrently, after the
-- views it reads. Same rules as 20261126000200_analytics_views.sql: private schema only, read
-- through the security definer analytics functions filtered to the caller's organization, UTC
-- days, product attributes (category, unit cost) as of the refresh.

-- Sales per organization, location and day --------------------------------------------------------

create materialized view private.location_daily_sales as
select
  d.organization_id,
  d.location_id,
  d.day,
  sum(d.units) as units,
  sum(d.revenue) as revenue,
  sum(d.cogs) as cogs,
  sum(d.order_count) as order_lines,
  count(*) as facts
from private.daily_sales as d
group by d.organization_id, d.location_id, d.day;

comment on materialized view private.location_daily_sales is
'private.daily_sales summed per organization, location and UTC day: units, revenue, cogs,
order_lines (order x product pairs) and facts (the number of daily_sales rows summed, so that
callers can tell how many product rows a period holds). Summed over locations it gives the
organization''s daily totals.';

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
  sum(d.cogs) as cogs,
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
for uncategorized products) and UTC day: units, revenue, cogs, order_lines and facts.';

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
  select
    d.product_id,
    d.day,
    sum(d.units)::double precision as units
  from private.daily_sales as d
  cross join bounds as b
  where d.day between b.demand_to - 89 and b.demand_to
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
select
  l.organization_id,
  l.product_id,
  p.category_id,
  p.unit_cost,
  sum(l.on_hand) as on_hand,
  sum(l.reserved) as reserved,
  sum(l.on_hand) * p.unit_cost as value
from public.stock_levels as l
inner join public.products as p on l.product_id = p.id
group by l.organization_id, l.product_id, p.category_id, p.unit_cost;

comment on materialized view private.product_stock is
'Stock of each product with stock levels, summed over locations, as of the refresh: on_hand,
reserved, and value = on_hand * the product''s weighted average unit_cost (with its category and
unit_cost at that time).';

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
reorder parameters, sku, name and unit cost, the window''s demand sums, mean and sample
standard deviation of daily units (from private.product_sales_stats) and their stock (from
private.product_stock). Supplier lead times,
the service level and open purchase orders are read live.';

create unique index reorder_inputs_key on private.reorder_inputs (organization_id, product_id);

-- Stock per category and per location ------------------------------------------------------------

create materialized view private.stock_by_group as
select
  s.organization_id,
  'category' as dimension,
  coalesce(s.category_id, '00000000-0000-0000-0000-000000000000'::uuid) as key,
  sum(s.on_hand) as units,
  sum(s.value) as value  -- noqa: RF04
from private.product_stock as s
where s.on_hand > 0
group by
  s.organization_id,
  coalesce(s.category_id, '00000000-0000-0000-0000-000000000000'::uuid)
union all
select
  l.organization_id,
  'location' as dimension,
  l.location_id as key,
  sum(l.on_hand) as units,
  sum(l.on_hand * p.unit_cost) as value  -- noqa: RF04
from public.stock_levels as l
inner join public.products as p on l.product_id = p.id
group by l.organization_id, l.location_id;

comment on materialized view private.stock_by_group is
'Stock units and value (on hand * unit cost) per organization and category (dimension
category: products with stock on hand, key the category or the nil uuid for uncategorized) and
per location (dimension location: every stock level), as of the refresh.';

create unique index stock_by_group_key on private.stock_by_group (organization_id, dimension, key);

revoke all on table
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
('private.location_daily_sales', now()),
('private.category_daily_sales', now()),
('private.product_sales_stats', now()),
('private.product_stock', now()),
('private.reorder_inputs', now()),
('private.stock_by_group', now())
on conflict (view) do update set refreshed_at = excluded.refreshed_at;

-- Statistics for the readers' plans until the next refresh (which analyzes each view it
-- refreshes): autovacuum may be off or not yet have visited them.
analyze
private.daily_sales,
private.location_daily_sales,
private.category_daily_sales,
private.product_sales_stats,
private.product_stock,
private.reorder_inputs,
private.stock_by_group;
