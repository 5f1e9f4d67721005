-- NIMBUS analytics: materialized views in private, their refresh log, and the pg_cron schedule.
--
-- Read only through the SECURITY DEFINER functions in sql/functions/analytics, which filter by
-- the caller's organization (private.active_organization). Refreshed together, concurrently, by
-- private.refresh_analytics_views (pg_cron every 5 minutes where the extension exists, else
-- `nimbus refresh` or the public.refresh_analytics RPC). Days are UTC calendar days.
--
-- Stock history: a full snapshot per (organization, product, day) would hold products x days
-- rows (73 million for 100k products over two years), almost all repeating the previous day.
-- private.daily_stock_changes keeps instead the net change of stock units and value per
-- (organization, day); with the current totals in private.organization_summary it gives the
-- stock at the end of any day exactly: stock(d) = stock(now) - sum(changes on days after d).
-- Value uses the product's current weighted-average unit cost, as stock_valuation does.

-- Refresh log -----------------------------------------------------------------------------------

create table private.analytics_refreshes (
  view text primary key,  -- noqa: RF04
  refreshed_at timestamptz not null,
  duration_ms numeric(12, 3) not null default 0 check (duration_ms >= 0)
);

comment on table private.analytics_refreshes is
'When each analytics materialized view was last refreshed: the as_of of analytics results.';
comment on column private.analytics_refreshes.view is
'Qualified name of the materialized view, e.g. private.daily_sales.';

revoke all on table private.analytics_refreshes from public, anon, authenticated, service_role;

-- Daily sales per product, location and day -----------------------------------------------------

create materialized view private.daily_sales as
select
  o.organization_id,
  i.product_id,
  o.location_id,
  (o.completed_at at time zone 'UTC')::date as day,  -- noqa: RF04
  sum(i.quantity) as units,
  sum(i.quantity * i.unit_price) as revenue,
  sum(i.quantity * coalesce(i.unit_cost, p.unit_cost)) as cogs,
  count(distinct o.id) as order_count
from public.orders as o
inner join public.order_items as i on o.id = i.order_id
inner join public.products as p on i.product_id = p.id
where o.kind = 'sales' and o.status = 'fulfilled'
group by o.organization_id, i.product_id, o.location_id, (o.completed_at at time zone 'UTC')::date;

comment on materialized view private.daily_sales is
'Fulfilled sales per organization, product, location and UTC day of completion: units,
revenue (quantity * unit_price), cost of goods sold (quantity * order_items.unit_cost, else
the product''s current unit cost) and number of orders.';

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
  sum(m.quantity * p.unit_cost) as net_value
from public.stock_movements as m
inner join public.products as p on m.product_id = p.id
group by m.organization_id, (m.created_at at time zone 'UTC')::date;

comment on materialized view private.daily_stock_changes is
'Net stock change per organization and UTC day, in units and in value at the current unit
cost; subtracted from the current totals it gives the stock at the end of any past day.';

create unique index daily_stock_changes_key on private.daily_stock_changes (
  organization_id, day
);

-- One row per organization: the dashboard's heavy totals ----------------------------------------

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

product_stock as (
  select
    p.organization_id,
    p.id,
    p.active,
    p.archived_at,
    p.unit_cost,
    coalesce(sum(l.on_hand), 0) as on_hand
  from public.products as p
  left join public.stock_levels as l on p.id = l.product_id
  group by p.id
),

stock as (
  select
    ps.organization_id,
    count(*) as products,
    count(*) filter (where ps.active and ps.archived_at is null) as active_products,
    sum(ps.on_hand) as stock_units,
    sum(ps.on_hand * ps.unit_cost) as stock_value
  from product_stock as ps
  group by ps.organization_id
),

-- Same rule as public.low_stock_products(): one per (active product, location) stock level at
-- or below the product's threshold.
low as (
  select
    l.organization_id,
    count(*) as low_stock_count
  from public.stock_levels as l
  inner join public.products as p on l.product_id = p.id
  inner join config as c on l.organization_id = c.organization_id
  where p.active and l.on_hand <= coalesce(p.low_stock_threshold, c.default_threshold)
  group by l.organization_id
),

expiring as (
  select
    l.organization_id,
    count(*) as expiring_count
  from public.lots as l
  inner join config as c on l.organization_id = c.organization_id
  where l.quantity > 0 and l.expiry_date <= current_date + c.expiry_days
  group by l.organization_id
),

sales as (
  select
    d.organization_id,
    d.product_id,
    sum(d.units) as units,
    sum(d.revenue) as revenue
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
    jsonb_agg(
      jsonb_build_object(
        'product_id', r.product_id,
        'sku', p.sku,
        'name', p.name,
        'units', r.units,
        'revenue', r.revenue
      )
      order by r.rank
    ) filter (where r.rank <= 5) as top_products
  from ranked as r
  inner join public.products as p on r.product_id = p.id
  group by r.organization_id
)

select
  c.organization_id,
  coalesce(st.products, 0) as products,
  coalesce(st.active_products, 0) as active_products,
  (
    select count(*) from public.locations as l
    where l.organization_id = c.organization_id
  ) as locations,
  coalesce(st.stock_units, 0) as stock_units,
  coalesce(st.stock_value, 0) as stock_value,
  coalesce(lo.low_stock_count, 0) as low_stock_count,
  coalesce(e.expiring_count, 0) as expiring_count,
  coalesce(sa.units_30d, 0) as units_30d,
  coalesce(sa.revenue_30d, 0) as revenue_30d,
  coalesce(sa.top_products, '[]'::jsonb) as top_products
from config as c
left join stock as st on c.organization_id = st.organization_id
left join low as lo on c.organization_id = lo.organization_id
left join expiring as e on c.organization_id = e.organization_id
left join sales_totals as sa on c.organization_id = sa.organization_id;

comment on materialized view private.organization_summary is
'Per organization, as of the last refresh: product and location counts, stock units and value
(on hand * unit cost), low-stock (product x location) and expiring-lot counts (the rules of
low_stock_products and expiring_soon), 30-day units and revenue and the top 5 products by 30-day revenue.';

create unique index organization_summary_key on private.organization_summary (organization_id);

revoke all on table
private.daily_sales,
private.daily_stock_changes,
private.organization_summary
from public, anon, authenticated, service_role;

-- Schedule: pg_cron where it exists (Supabase), else `nimbus refresh` / the RPC -------------------

do $$
begin
  -- pg_cron loads only from shared_preload_libraries: create it only where that is so.
  if
    exists (select from pg_catalog.pg_available_extensions where name = 'pg_cron')
    and current_setting('shared_preload_libraries') like '%pg_cron%'
  then
    create extension if not exists pg_cron;
    perform cron.schedule(
      'nimbus-refresh-analytics',
      '*/5 * * * *',
      'select private.refresh_analytics_views(true)'
    );
  end if;
end
$$;

-- The views above were populated just now.
insert into private.analytics_refreshes (view, refreshed_at)
values
('private.daily_sales', now()),
('private.daily_stock_changes', now()),
('private.organization_summary', now());
