-- Analytics count days in the organization's time zone (issue 16), and forecast_alpha goes.
--
-- The setting timezone existed but days were UTC: a sale at 23:30 in Auckland landed on the
-- previous UTC day, "today" and "yesterday" were UTC dates. The views that bucket by day
-- (daily_sales, daily_stock_changes) now count each organization's days in its zone
-- (private.organization_timezone: the setting, else UTC; a name PostgreSQL does not know counts
-- as UTC), and the views that look back from today (organization_summary's 30 days,
-- product_sales_stats' and reorder_inputs' demand window ending yesterday) take today there.
-- Week and month buckets are made from these days at query time (date_trunc), so they follow.
--
-- Why per-zone days rather than UTC facts bucketed into local days at query time: the rollups
-- the fast reads use would grow (large data set: 119,407 location-hours for 10,950
-- location-days, 383,694 category-hours for 52,320 category-days) and every read would
-- re-aggregate them; zones with 30- and 45-minute offsets (India, Nepal, Chatham) would even need
-- quarter hours (289,436 location rows). Per-zone days keep every reader's plan and timing; the
-- refresh pays one conversion per row, and a change of an organization's zone applies at the
-- next refresh (as_of says when that was).
--
-- Dropped and recreated with the same names, unique indexes (refresh concurrently) and privileges:
-- daily_sales and the views reading it (organization_summary, location_daily_sales,
-- category_daily_sales, product_sales_stats, reorder_inputs), and daily_stock_changes.
-- product_stock and stock_by_group have no days and stay. private.organization_timezone is
-- created here as an identical copy of sql/functions/settings/organization_timezone.sql
-- (functions are applied after the migrations, and the views call it).
--
-- forecast_alpha: the forecast fits its own parameters since issue 16 and no longer reads the
-- setting; private.settings_valid (re-applied after this) refuses the key from now on, so it is
-- removed from the documents that still carry it.

update public.settings
set value = value - 'forecast_alpha'
where value ? 'forecast_alpha';

comment on column public.settings.value is
'Only these keys: currency, timezone, default_low_stock_threshold, expiry_warning_days,
forecast_horizon_days, service_level, costing_method, over_receipt_tolerance (see
private.settings_valid).';

create or replace function private.organization_timezone(organization_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  zone text;
begin
  select s.value ->> 'timezone' into zone
  from public.settings as s
  where s.organization_id = organization_timezone.organization_id;
  if zone is null then
    return 'UTC';
  end if;
  -- A name written before names were checked (settings_timezone_known) may be unknown: UTC.
  perform now() at time zone zone;
  return zone;
exception
  when invalid_parameter_value then
    return 'UTC';
end
$$;

comment on function private.organization_timezone(uuid) is
'The time zone an organization''s days are counted in: its setting timezone, else UTC.

Analytics bucket sales and stock movements into days, weeks and months of this zone, and their
"today" is the date there. A stored name PostgreSQL does not know (possible only in rows written
before private.settings_timezone_known checked names) counts as UTC, so that one bad row cannot
stop the refresh of every organization''s views. Security invoker: the analytics functions and
materialized views call it with the privileges of their owner.';

revoke all on function private.organization_timezone(uuid) from public, anon, authenticated;

drop materialized view private.reorder_inputs;

drop materialized view private.product_sales_stats;

drop materialized view private.category_daily_sales;

drop materialized view private.location_daily_sales;

drop materialized view private.organization_summary;

drop materialized view private.daily_stock_changes;

drop materialized view private.daily_sales;

-- Daily sales per product, location and day -------------------------------------------------------

create materialized view private.daily_sales as
with
zones as materialized (
  -- Each organization's time zone (its setting timezone, else UTC): its days are counted there.
  -- Materialized, so that it is looked up once per organization: inlined, the planner called
  -- the function once per joined row (daily_stock_changes: 1.3 s -> 33 s on the large data set).
  select
    o.id as organization_id,
    private.organization_timezone(o.id) as zone  -- noqa: RF04
  from public.organizations as o
),

fulfilled as (
  -- Sales orders fulfilled (or closed short), on the organization's day of completion.
  select
    o.id,
    o.organization_id,
    o.location_id,
    (o.completed_at at time zone z.zone)::date as day  -- noqa: RF04
  from public.orders as o
  inner join zones as z on o.organization_id = z.organization_id
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
    (m.created_at at time zone z.zone)::date as day,  -- noqa: RF04
    0 as units,
    0 as revenue,
    -coalesce(m.wac_value, m.quantity * m.unit_cost, 0) as cogs_wac,
    -coalesce(m.fifo_value, m.quantity * m.unit_cost, 0) as cogs_fifo,
    null as order_id
  from public.stock_movements as m
  inner join zones as z on m.organization_id = z.organization_id
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
'Sales per organization, product, location and day, days counted in the organization''s time
zone (private.organization_timezone, as of the refresh): units and revenue (done_quantity *
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
with
zones as materialized (
  -- Each organization's time zone (its setting timezone, else UTC): its days are counted there.
  -- Materialized, so that it is looked up once per organization: inlined, the planner called
  -- the function once per joined row (daily_stock_changes: 1.3 s -> 33 s on the large data set).
  select
    o.id as organization_id,
    private.organization_timezone(o.id) as zone  -- noqa: RF04
  from public.organizations as o
),

changes as (
  select
    m.organization_id,
    (m.created_at at time zone z.zone)::date as day,  -- noqa: RF04
    m.quantity,
    m.wac_value,
    m.fifo_value,
    m.unit_cost
  from public.stock_movements as m
  inner join zones as z on m.organization_id = z.organization_id
)

select
  m.organization_id,
  m.day,
  sum(m.quantity) filter (where m.quantity > 0) as units_in,
  coalesce(-sum(m.quantity) filter (where m.quantity < 0), 0) as units_out,
  sum(m.quantity) as net_units,
  sum(coalesce(m.wac_value, m.quantity * m.unit_cost, 0)) as net_value_wac,
  sum(coalesce(m.fifo_value, m.quantity * m.unit_cost, 0)) as net_value_fifo
from changes as m
group by m.organization_id, m.day;

comment on materialized view private.daily_stock_changes is
'Net stock change per organization and day (in the organization''s time zone): units in, out and
net, and the net value by both costing methods (sum of the movements'' wac_value and fifo_value;
rows older than costing: quantity * their unit_cost). Subtracted from the current stock value
(organization_summary) it gives the stock value at the end of any past day.';

create unique index daily_stock_changes_key on private.daily_stock_changes (
  organization_id, day
);

-- One row per organization: the dashboard's heavy totals ------------------------------------------

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
'private.daily_sales summed per organization, location and day (the organization''s): units,
revenue, cogs_wac, cogs_fifo, order_lines (order x product pairs) and facts (the number of
daily_sales rows summed, so that callers can tell how many product rows a period holds). Summed
over locations it gives the organization''s daily totals.';

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
for uncategorized products) and day (the organization''s): units, revenue, cogs_wac, cogs_fifo,
order_lines and facts.';

create unique index category_daily_sales_key on private.category_daily_sales (
  organization_id, day, category_id
);

-- Per product: all-time revenue and the 90-day demand statistics ------------------------------

create materialized view private.product_sales_stats as
with
bounds as materialized (
  -- Yesterday in each organization's time zone (materialized: computed once per organization).
  select
    o.id as organization_id,
    (now() at time zone private.organization_timezone(o.id))::date - 1 as demand_to
  from public.organizations as o
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
  inner join bounds as b on d.organization_id = b.organization_id
  group by d.organization_id, d.product_id
),

daily as (
  -- Days with sales (a day with only a customer return has units 0: no demand).
  select
    d.product_id,
    d.day,
    sum(d.units)::double precision as units
  from private.daily_sales as d
  inner join bounds as b on d.organization_id = b.organization_id
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
inner join bounds as b on t.organization_id = b.organization_id
left join demand as dm on t.product_id = dm.product_id;

comment on materialized view private.product_sales_stats is
'Per organization and product with fulfilled sales: revenue over all days (revenue_total) and
over the days after demand_to - 365, - 90 and - 30 (revenue_365d, _90d, _30d, later days
included), upper bounds of its revenue over any period inside them, with which sales_analytics
finds the top products of a period without summing every product; and, over the 90 days ending
demand_to (the day before the refresh in the organization''s time zone), the number of days with
sales, the sum of daily units and the sum of their squares (float8), from which
reorder_suggestions takes mean and standard deviation.';

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

-- Reorder inputs per product and location ---------------------------------------------------------

create materialized view private.reorder_inputs as
with
bounds as materialized (
  -- Yesterday in each organization's time zone (materialized: computed once per organization).
  select
    o.id as organization_id,
    (now() at time zone private.organization_timezone(o.id))::date - 1 as demand_to
  from public.organizations as o
),

demand as (
  select
    d.product_id,
    d.location_id,
    count(*) as demand_days,
    sum(d.units)::double precision as demand_units,
    sum(d.units::double precision * d.units::double precision) as demand_squares
  from private.daily_sales as d
  inner join bounds as b on d.organization_id = b.organization_id
  where d.day between b.demand_to - 89 and b.demand_to and d.units > 0
  group by d.product_id, d.location_id
),

pairs as (
  -- Where it sold in the window, and where a product with a fixed reorder point is stocked.
  select
    dm.product_id,
    dm.location_id
  from demand as dm
  union
  select
    l.product_id,
    l.location_id
  from public.stock_levels as l
  inner join public.products as p on l.product_id = p.id
  where p.reorder_point is not null
),

suppliers as (
  -- The preferred supplier: the preferred row, else products.supplier_id, else the cheapest.
  select distinct on (p.id)
    p.id as product_id,
    coalesce(sp.supplier_id, p.supplier_id) as supplier_id,
    coalesce(sp.lead_time_days, s.lead_time_days) as lead_time_days
  from public.products as p
  left join public.supplier_products as sp on p.id = sp.product_id
  inner join public.suppliers as s on coalesce(sp.supplier_id, p.supplier_id) = s.id
  order by
    p.id asc,
    sp.preferred desc nulls last,
    (sp.supplier_id = p.supplier_id) desc nulls last,
    coalesce(sp.unit_cost, p.unit_cost) asc,
    s.id asc
),

figures as (
  select
    p.organization_id,
    pr.product_id,
    pr.location_id,
    p.sku,
    p.name,
    sup.supplier_id,
    sup.lead_time_days,
    p.unit_cost,
    p.reorder_point,
    p.safety_stock,
    b.demand_to,
    coalesce(dm.demand_days, 0) as demand_days,
    coalesce(dm.demand_units, 0) as demand_units,
    coalesce(dm.demand_squares, 0) as demand_squares,
    -- Mean and sample standard deviation of daily units over the 90 days, zero days included.
    coalesce(dm.demand_units, 0) / 90 as mean,
    sqrt(greatest(
      (coalesce(dm.demand_squares, 0) - coalesce(dm.demand_units, 0) ^ 2 / 90) / 89, 0
    )) as sigma,
    f.method as forecast_method,
    f.daily_forecast,
    f.error_sigma as forecast_error,
    coalesce(l.on_hand, 0) as on_hand,
    coalesce(l.reserved, 0) as reserved
  from pairs as pr
  inner join public.products as p on pr.product_id = p.id
  inner join bounds as b on p.organization_id = b.organization_id
  inner join suppliers as sup on pr.product_id = sup.product_id
  left join demand as dm on pr.product_id = dm.product_id and pr.location_id = dm.location_id
  left join private.demand_forecasts as f
    on
      pr.product_id = f.product_id and pr.location_id = f.location_id
      and f.demand_to >= b.demand_to - 7
  left join public.stock_levels as l
    on pr.product_id = l.product_id and pr.location_id = l.location_id
  where p.active and p.archived_at is null
),

usable as (
  -- The forecast where fitted, else the window's mean and sigma.
  select
    g.*,
    coalesce(g.daily_forecast, g.mean) as daily_demand,
    coalesce(g.forecast_error, g.sigma) as error_sigma,
    (g.on_hand - g.reserved)::double precision as free
  from figures as g
)

select
  u.organization_id,
  u.product_id,
  u.location_id,
  u.sku,
  u.name,
  u.supplier_id,
  u.lead_time_days,
  u.unit_cost,
  u.reorder_point,
  u.safety_stock,
  u.demand_to,
  u.demand_days,
  u.demand_units,
  u.demand_squares,
  u.mean,
  u.sigma,
  u.forecast_method,
  u.daily_demand,
  u.error_sigma,
  u.on_hand,
  u.reserved,
  u.free,
  -- Days of forecast demand that on hand - reserved covers (null without demand).
  u.free / nullif(u.daily_demand, 0) as urgency,
  -- The smallest z (service level quantile) at which on hand - reserved is at or below the
  -- computed reorder point d * L + max(z * e * sqrt(L), safety_stock): the rows at or below
  -- their point at a given z are the rows with z_threshold <= z, an index range. A fixed
  -- reorder_point decides alone.
  case
    when u.reorder_point is not null and u.free <= u.reorder_point
      then '-infinity'::double precision
    when u.reorder_point is not null
      then 'infinity'::double precision
    when u.free <= u.daily_demand * u.lead_time_days + u.safety_stock
      then '-infinity'::double precision
    when u.error_sigma * sqrt(u.lead_time_days) = 0
      then 'infinity'::double precision
    else
      (u.free - u.daily_demand * u.lead_time_days) / (u.error_sigma * sqrt(u.lead_time_days))
  end as z_threshold
from usable as u;


comment on materialized view private.reorder_inputs is
'What reorder_suggestions needs per product and location, as of the refresh: every active,
unarchived product with a supplier, at each location where it sold in the 90-day demand window
ending demand_to (yesterday in the organization''s time zone), or where it is stocked when it
has a fixed reorder_point; with its sku, name, catalog unit_cost and reorder parameters, its
preferred supplier and that supplier''s lead time for it (public.supplier_products, else
products.supplier_id), the window''s demand sums, mean and sample standard deviation of daily
units there, free = on_hand - reserved (float8), the forecast daily demand and the standard
deviation of its error (private.demand_forecasts; mean and sigma when not fitted), and its stock
there (on_hand, reserved), urgency (days of forecast demand that stock covers, null without
demand), and z_threshold: the smallest standard normal quantile z at which that stock is at or
below its reorder point (-infinity: at any z; infinity: at none; the product''s fixed
reorder_point decides alone when set). Rules, incoming purchase orders, prices and the service
level are read live by reorder_suggestions.';

create unique index reorder_inputs_key on private.reorder_inputs (
  organization_id, product_id, location_id
);

create index reorder_inputs_urgency_idx on private.reorder_inputs (
  organization_id, urgency, sku, location_id
);

create index reorder_inputs_z_threshold_idx on private.reorder_inputs (
  organization_id, z_threshold
);

revoke all on table
private.daily_sales,
private.daily_stock_changes,
private.organization_summary,
private.location_daily_sales,
private.category_daily_sales,
private.product_sales_stats,
private.reorder_inputs
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
('private.reorder_inputs', now())
on conflict (view) do update set refreshed_at = excluded.refreshed_at;

analyze
private.daily_sales,
private.daily_stock_changes,
private.organization_summary,
private.location_daily_sales,
private.category_daily_sales,
private.product_sales_stats,
private.reorder_inputs;
