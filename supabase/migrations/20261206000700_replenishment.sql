-- Replenishment (issue 16, point 1): several suppliers per product, reorder rules per product and
-- location, forecast-based reorder points per location, and draft purchase orders from them.
--
-- * public.supplier_products: what each supplier sells of a product, on which terms (lead time,
--   price, minimum order quantity, pack size); one preferred supplier per product. Without a row
--   for a product, products.supplier_id stays its (preferred) supplier.
-- * public.reorder_rules: a min/max or a reorder point per product and location, overriding the
--   computed reorder point there.
-- * private.demand_forecasts: the demand forecast of each product at each location
--   (private.forecast_series on its daily series), fitted once per demand day by
--   private.refresh_demand_forecasts (called by private.refresh_analytics_views).
-- * private.reorder_inputs: rebuilt per product and location (it was per product, stock pooled).
--
-- Managers write the two public tables through PostgREST (RLS: sql/policies); members read them.
-- This migration must not call functions from sql/functions (applied after the migrations).

-- Suppliers per product ---------------------------------------------------------------------------

create table public.supplier_products (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  supplier_id uuid not null,
  product_id uuid not null,
  supplier_sku text check (char_length(supplier_sku) between 1 and 64),
  lead_time_days integer check (lead_time_days between 0 and 365),
  unit_cost numeric check (
    unit_cost >= 0 and unit_cost = round(unit_cost, 4) and unit_cost < 10000000000
  ),
  minimum_order_quantity numeric(14, 3) not null default 0 check (
    minimum_order_quantity >= 0 and minimum_order_quantity < 100000000000
    and minimum_order_quantity <> 'NaN'::numeric
  ),
  pack_size numeric(14, 3) not null default 1 check (
    pack_size > 0 and pack_size < 100000000000 and pack_size <> 'NaN'::numeric
  ),
  preferred boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint supplier_products_supplier_product_key unique (
    organization_id, supplier_id, product_id
  ),
  unique (organization_id, id),
  constraint supplier_products_supplier_fkey foreign key (organization_id, supplier_id)
  references public.suppliers (organization_id, id) on delete restrict,
  constraint supplier_products_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict
);

comment on table public.supplier_products is
'Which suppliers sell a product, and on which terms; at most one preferred supplier per product.

Reorder suggestions and create_replenishment_orders buy from the preferred supplier (else from
products.supplier_id, else from the cheapest supplier listed), at its unit_cost and lead time,
rounded up to its minimum_order_quantity and pack_size. A product without any row keeps
products.supplier_id as its preferred supplier, on the supplier''s lead time and the catalog
unit_cost.';
comment on column public.supplier_products.supplier_sku is 'The supplier''s own code for it.';
comment on column public.supplier_products.lead_time_days is
'Days from order to receipt for this product; null = the supplier''s lead_time_days.';
comment on column public.supplier_products.unit_cost is
'Purchase price per unit from this supplier (at most 4 decimals); null = products.unit_cost.';
comment on column public.supplier_products.minimum_order_quantity is
'Smallest quantity the supplier accepts on one order line (0 = no minimum).';
comment on column public.supplier_products.pack_size is
'Ordered quantities are whole multiples of this (1 = any whole quantity).';
comment on column public.supplier_products.preferred is
'The supplier reorders go to; at most one row per product is preferred (unique index).';

create unique index supplier_products_preferred_key on public.supplier_products (product_id)
where preferred;

create index supplier_products_product_id_idx on public.supplier_products (
  organization_id, product_id
);

-- Reorder rules per product and location --------------------------------------------------------

create table public.reorder_rules (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  product_id uuid not null,
  location_id uuid not null,
  min_quantity numeric(14, 3) check (min_quantity >= 0 and min_quantity < 100000000000),
  max_quantity numeric(14, 3) check (max_quantity > 0 and max_quantity < 100000000000),
  reorder_point numeric(14, 3) check (reorder_point >= 0 and reorder_point < 100000000000),
  notes text check (char_length(notes) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint reorder_rules_product_location_key unique (organization_id, product_id, location_id),
  unique (organization_id, id),
  -- Either min/max (both) or a reorder point (with an optional order-up-to max).
  constraint reorder_rules_kind_check check (
    (min_quantity is not null and max_quantity is not null and reorder_point is null)
    or (reorder_point is not null and min_quantity is null)
  ),
  constraint reorder_rules_max_check check (
    max_quantity is null or max_quantity >= coalesce(min_quantity, reorder_point)
  ),
  constraint reorder_rules_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict,
  constraint reorder_rules_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict
);

comment on table public.reorder_rules is
'Reorder rule of a product at a location, overriding the computed reorder point there.

min/max: reorder when available (on hand - reserved + incoming) is at or below min_quantity, up
to max_quantity. reorder_point: reorder when available is at or below it, up to max_quantity
when set, else up to reorder_point + 30 days of forecast demand. Quantities are then rounded up
to the supplier''s minimum order quantity and pack size.';
comment on column public.reorder_rules.min_quantity is
'Min of a min/max rule: reorder when available is at or below it (with max_quantity).';
comment on column public.reorder_rules.max_quantity is
'Order up to this quantity (required with min_quantity, optional with reorder_point).';
comment on column public.reorder_rules.reorder_point is
'Reorder when available is at or below it (instead of min_quantity).';
comment on column public.reorder_rules.notes is 'Why the rule exists, free text.';

create index reorder_rules_location_id_idx on public.reorder_rules (organization_id, location_id);

create index reorder_rules_product_id_idx on public.reorder_rules (product_id, location_id);

revoke all on table public.supplier_products, public.reorder_rules
from public, anon, authenticated, service_role;

-- Edited directly through PostgREST, as RLS policies allow (managers write, members read).
grant select, insert, update, delete on table public.supplier_products, public.reorder_rules
to authenticated, service_role;

-- Demand forecasts per product and location -------------------------------------------------------

create table private.demand_forecasts (
  product_id uuid not null,
  location_id uuid not null,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  demand_to date not null,
  method text,  -- noqa: RF04
  daily_forecast double precision not null,
  error_sigma double precision,
  mase double precision,
  fitted_at timestamptz not null default now(),
  primary key (product_id, location_id)
);

comment on table private.demand_forecasts is
'Demand forecast of each product at each location where it sold in the 90 days ending
demand_to, from private.forecast_series on that daily series (zero days included).

daily_forecast = its horizon_total / horizon_days over the next 28 days; error_sigma = the
standard deviation of its daily error, from the fit''s own hold-out (rmse when it reports one,
else 1.2533 * mae, the normal relation). Refitted only when demand_to moves (once a day), by
private.refresh_demand_forecasts; read by private.reorder_inputs.';

create index demand_forecasts_organization_id_idx on private.demand_forecasts (organization_id);

revoke all on table private.demand_forecasts from public, anon, authenticated, service_role;

-- Reorder inputs per product and location ---------------------------------------------------------
-- A forecast up to 7 days old is used: fitting is budgeted per refresh
-- (private.refresh_demand_forecasts), so a large catalogue may take several refreshes.

drop function if exists public.reorder_suggestions(uuid);

drop materialized view private.reorder_inputs;

create materialized view private.reorder_inputs as
with
bounds as (
  select (now() at time zone 'UTC')::date - 1 as demand_to
),

demand as (
  select
    d.product_id,
    d.location_id,
    count(*) as demand_days,
    sum(d.units)::double precision as demand_units,
    sum(d.units::double precision * d.units::double precision) as demand_squares
  from private.daily_sales as d
  cross join bounds as b
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
  cross join bounds as b
  inner join public.products as p on pr.product_id = p.id
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
ending demand_to, or where it is stocked when it has a fixed reorder_point; with its sku, name,
catalog unit_cost and reorder parameters, its preferred supplier and that supplier''s lead time
for it (public.supplier_products, else products.supplier_id), the window''s demand sums, mean and
sample standard deviation of daily units there, free = on_hand - reserved (float8), the
forecast daily demand and the standard
deviation of its error (private.demand_forecasts; mean and sigma when not fitted), and its stock
there (on_hand, reserved), urgency (days of forecast demand that stock covers, null without
demand), and z_threshold: the smallest standard normal quantile z at which that
stock is at or below its reorder point (-infinity: at any z; infinity: at none; the product''s
fixed reorder_point decides alone when set). Rules, incoming purchase orders, prices and the
service level are read live by reorder_suggestions.';

create unique index reorder_inputs_key on private.reorder_inputs (
  organization_id, product_id, location_id
);

create index reorder_inputs_urgency_idx on private.reorder_inputs (
  organization_id, urgency, sku, location_id
);

create index reorder_inputs_z_threshold_idx on private.reorder_inputs (
  organization_id, z_threshold
);

revoke all on table private.reorder_inputs from public, anon, authenticated, service_role;

insert into private.analytics_refreshes as r (view, refreshed_at)
values ('private.reorder_inputs', now())
on conflict (view) do update set refreshed_at = excluded.refreshed_at;

analyze private.reorder_inputs;
