create or replace function public.reorder_suggestions(organization_id uuid default null)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(reorder_suggestions.organization_id);
  as_of timestamptz := (select min(a.refreshed_at) from private.analytics_refreshes as a);
  last_day date := (as_of at time zone 'UTC')::date - 1;
  window_days constant int := 90;
  cover_days constant int := 30;
  service_level double precision;
  z double precision;
  result jsonb;
begin
  select coalesce((s.value ->> 'service_level')::double precision, 0.95) into service_level
  from (select 1) as one
  left join public.settings as s on s.organization_id = org;
  z := private.inverse_normal_cdf(service_level);

  with daily as (
    select d.product_id, d.day, sum(d.units)::double precision as units
    from private.daily_sales as d
    where d.organization_id = org and d.day between last_day - window_days + 1 and last_day
    group by d.product_id, d.day
  ),

  -- Mean and sample standard deviation over all window days, zero-demand days included.
  demand as (
    select
      d.product_id,
      sum(d.units) / window_days as mean,
      sqrt(greatest(
        (sum(d.units * d.units) - sum(d.units) ^ 2 / window_days) / (window_days - 1), 0
      )) as sigma
    from daily as d
    group by d.product_id
  ),

  candidates as (
    select
      p.id,
      p.sku,
      p.name,
      p.supplier_id,
      p.unit_cost,
      sup.lead_time_days as lead,
      coalesce(dm.mean, 0) as mean,
      coalesce(dm.sigma, 0) as sigma,
      coalesce(
        p.reorder_point::double precision,
        coalesce(dm.mean, 0) * sup.lead_time_days
        + greatest(z * coalesce(dm.sigma, 0) * sqrt(sup.lead_time_days), p.safety_stock)
      ) as reorder_point
    from public.products as p
    inner join public.suppliers as sup on p.supplier_id = sup.id
    left join demand as dm on p.id = dm.product_id
    where
      p.organization_id = org and p.active and p.archived_at is null
      and (dm.product_id is not null or p.reorder_point is not null)
  ),

  on_order as (
    select i.product_id, sum(i.quantity) as quantity
    from public.orders as o
    inner join public.order_items as i on o.id = i.order_id
    where o.organization_id = org and o.kind = 'purchase' and o.status = 'confirmed'
    group by i.product_id
  ),

  stock as (
    select l.product_id, sum(l.on_hand) as on_hand, sum(l.reserved) as reserved
    from public.stock_levels as l
    where l.organization_id = org
    group by l.product_id
  ),

  positions as (
    select
      c.*,
      coalesce(st.on_hand, 0) as on_hand,
      coalesce(st.reserved, 0) as reserved,
      coalesce(oo.quantity, 0) as on_order
    from candidates as c
    left join stock as st on c.id = st.product_id
    left join on_order as oo on c.id = oo.product_id
  ),

  lines as (
    select
      p.*,
      p.on_hand - p.reserved + p.on_order as available,
      ceil(greatest(
        p.reorder_point + p.mean * cover_days - (p.on_hand - p.reserved + p.on_order), 1
      ))::numeric as quantity
    from positions as p
    where p.on_hand - p.reserved + p.on_order <= p.reorder_point
  )

  select coalesce(jsonb_agg(po order by po ->> 'supplier_name'), '[]'::jsonb)
  into result
  from (
    select jsonb_build_object(
      'supplier_id', s.id,
      'supplier_name', s.name,
      'lead_time_days', s.lead_time_days,
      'currency', s.currency,
      'status', 'draft',
      'total_cost', round(sum(l.quantity * l.unit_cost), 2),
      'lines', jsonb_agg(jsonb_build_object(
        'product_id', l.id,
        'sku', l.sku,
        'name', l.name,
        'on_hand', l.on_hand,
        'reserved', l.reserved,
        'on_order', l.on_order,
        'available', l.available,
        'mean_daily_demand', round(l.mean::numeric, 4),
        'sigma_daily_demand', round(l.sigma::numeric, 4),
        'reorder_point', round(l.reorder_point::numeric, 3),
        'suggested_quantity', l.quantity,
        'unit_cost', l.unit_cost
      ) order by l.sku)
    ) as po
    from lines as l
    inner join public.suppliers as s on l.supplier_id = s.id
    group by s.id
  ) as proposals;

  return jsonb_build_object(
    'as_of', as_of,
    'organization_id', org,
    'service_level', service_level,
    'z', round(z::numeric, 6),
    'demand_window_days', window_days,
    'cover_days', cover_days,
    'purchase_orders', result
  );
end
$$;

comment on function public.reorder_suggestions(uuid) is
'Draft purchase orders, one per supplier, for the products at or below their reorder point.

For each active product with a supplier: mean and sigma (sample standard deviation) of daily
fulfilled units over the 90 days before as_of, zero days included; reorder point = the
product''s reorder_point if set, else mean * L + max(z * sigma * sqrt(L), safety_stock), L the
supplier''s lead_time_days and z the standard normal quantile of settings service_level
(default 0.95 -> 1.645). A line is proposed when available (on hand - reserved + confirmed
purchase orders) <= reorder point, for ceil(reorder point + 30 days of mean demand -
available) units. Security definer to read the views; filtered to
private.active_organization(organization_id).';

revoke all on function public.reorder_suggestions(uuid) from public, anon;

grant execute on function public.reorder_suggestions(uuid) to authenticated;
