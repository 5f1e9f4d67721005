-- The dashboard's expiring and low-stock counts judge lots by the organization's date.
--
-- private.organization_summary counted a lot as usable, and as expiring, by the database's
-- current_date, while every function (expiring_soon, low_stock_products, selling, picking) has
-- judged by private.organization_today since 20261206001300: between an organization's midnight
-- and the server's (or the next expiry scan), the dashboard and the lists disagreed. The view
-- already had each organization's today (config.today); its lot rules now read it. Dropped and
-- recreated with the same name, unique index (refresh concurrently) and privileges; nothing
-- depends on it but functions, which read it by name.

drop materialized view private.organization_summary;

create materialized view private.organization_summary as
with
config as materialized (
  -- The organization's today, in its time zone (materialized: computed once per organization).
  select
    o.id as organization_id,
    (now() at time zone private.organization_timezone(o.id))::date as today,
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
-- applied after the migrations), judged by the organization's date.
unusable as (
  select
    l.product_id,
    l.location_id,
    sum(l.quantity) as quantity
  from public.lots as l
  inner join config as c on l.organization_id = c.organization_id
  where
    l.quantity > 0
    and not (l.status = 'available' and (l.expiry_date is null or l.expiry_date >= c.today))
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
    and l.expiry_date >= c.today
    and l.expiry_date <= c.today + c.expiry_days
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
  inner join config as c on d.organization_id = c.organization_id
  where d.day > c.today - 30
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
expiring-lot counts (the rules of low_stock_products and expiring_soon), units, revenue and cost
of goods sold by both methods over the 30 days ending today in the organization''s time zone
(today included), and the top 5 products by that revenue.';

create unique index organization_summary_key on private.organization_summary (organization_id);

revoke all on table private.organization_summary from public, anon, authenticated, service_role;

-- Populated just now.
insert into private.analytics_refreshes as r (view, refreshed_at)
values ('private.organization_summary', now())
on conflict (view) do update set refreshed_at = excluded.refreshed_at;

analyze private.organization_summary;
