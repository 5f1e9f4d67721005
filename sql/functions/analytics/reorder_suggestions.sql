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

  -- Built as json (text) and cast once: jsonb would sort the keys of every line as it goes.
  with candidates as (
    select
      x.product_id,
      x.sku,
      x.name,
      x.supplier_id,
      x.unit_cost,
      x.on_hand,
      x.reserved,
      x.reorder_point as fixed_point,
      x.safety_stock,
      x.mean,
      x.sigma,
      sup.lead_time_days as lead
    from private.reorder_inputs as x
    inner join public.suppliers as sup on x.supplier_id = sup.id
    where x.organization_id = org
  ),

  on_order as (
    select i.product_id, sum(i.quantity - i.done_quantity) as quantity
    from public.orders as o
    inner join public.order_items as i on o.id = i.order_id
    where
      o.organization_id = org
      and o.kind = 'purchase'
      and o.status in ('confirmed', 'partially_received')
    group by i.product_id
  ),

  positions as (
    select
      c.*,
      coalesce(
        c.fixed_point::double precision,
        c.mean * c.lead + greatest(z * c.sigma * sqrt(c.lead), c.safety_stock)
      ) as reorder_point,
      coalesce(oo.quantity, 0) as on_order
    from candidates as c
    left join on_order as oo on c.product_id = oo.product_id
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

  select coalesce(json_agg(po order by po ->> 'supplier_name'), '[]'::json)::jsonb
  into result
  from (
    select json_build_object(
      'supplier_id', s.id,
      'supplier_name', s.name,
      'lead_time_days', s.lead_time_days,
      'currency', s.currency,
      'status', 'draft',
      'total_cost', round(sum(l.quantity * l.unit_cost), 2),
      'lines', json_agg(json_build_object(
        'product_id', l.product_id,
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
fulfilled units over the 90 days before the refresh day, zero days included; reorder point =
the product''s reorder_point if set, else mean * L + max(z * sigma * sqrt(L), safety_stock), L
the supplier''s lead_time_days and z the standard normal quantile of settings service_level
(default 0.95 -> 1.645). A line is proposed when available (on hand - reserved + what confirmed
and partially received purchase orders still bring) <= reorder point, for ceil(reorder point + 30 days of mean demand - available)
units. Demand, stock and the products'' reorder parameters are as of as_of (the last refresh,
private.reorder_inputs; refresh_analytics for a fresher one); lead times, service level and
confirmed purchase orders are live. Security definer to read the views; filtered to
private.active_organization(organization_id).';

revoke all on function public.reorder_suggestions(uuid) from public, anon;

grant execute on function public.reorder_suggestions(uuid) to authenticated;
