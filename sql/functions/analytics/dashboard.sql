create or replace function public.dashboard(organization_id uuid default null)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(dashboard.organization_id);
  costing text := private.costing_method(null, org);
  summary jsonb := private.analytics_section(
    array['private.organization_summary'],
    array[
      'products', 'active_products', 'locations', 'stock_units', 'stock_value',
      'low_stock_count', 'expiring_count', 'revenue_30d', 'units_30d', 'cogs_30d', 'top_products'
    ]
  );
  result jsonb;
begin
  select jsonb_build_object(
    'as_of', summary -> 'as_of',
    'sections', jsonb_build_object(
      'summary', summary,
      'recent_movements', private.analytics_section(null, array['recent_movements'])
    ),
    'timezone', private.organization_timezone(org),
    'organization_id', org,
    'products', coalesce(s.products, 0),
    'active_products', coalesce(s.active_products, 0),
    'locations', coalesce(s.locations, 0),
    'stock_units', coalesce(s.stock_units, 0),
    'costing_method', costing,
    'stock_value', round(coalesce(
      case when costing = 'fifo' then s.stock_value_fifo else s.stock_value_wac end, 0
    ), 2),
    'low_stock_count', coalesce(s.low_stock_count, 0),
    'expiring_count', coalesce(s.expiring_count, 0),
    'revenue_30d', round(coalesce(s.revenue_30d, 0), 2),
    'units_30d', coalesce(s.units_30d, 0),
    'cogs_30d', round(coalesce(
      case when costing = 'fifo' then s.cogs_fifo_30d else s.cogs_wac_30d end, 0
    ), 2),
    'top_products', coalesce(s.top_products, '[]'::jsonb),
    'recent_movements', coalesce((
      select jsonb_agg(to_jsonb(m) order by m.created_at desc, m.id desc)
      from (
        select
          sm.id,
          sm.created_at,
          sm.kind,
          sm.product_id,
          p.sku,
          p.name,
          sm.location_id,
          sm.quantity,
          sm.order_id
        from public.stock_movements as sm
        inner join public.products as p on sm.product_id = p.id
        where sm.organization_id = org
        order by sm.created_at desc, sm.id desc
        limit 10
      ) as m
    ), '[]'::jsonb)
  )
  into result
  from (select 1) as one
  left join private.organization_summary as s on s.organization_id = org;
  return result;
end
$$;

comment on function public.dashboard(uuid) is
'Inventory dashboard of the active organization: totals, alerts, 30-day sales, activity.

Keys: as_of (the summary''s), sections (how fresh each part is, private.analytics_section:
summary as_of the last refresh of private.organization_summary, recent_movements live),
timezone (the organization''s: its 30 days end today there), organization_id, products,
active_products, locations,
stock_units, costing_method, stock_value (by that method: the organization setting
costing_method, default weighted_average; private.product_costs or the FIFO layers, never the
catalog cost), low_stock_count, expiring_count, revenue_30d, units_30d, cogs_30d (cost of goods
sold by the method, net of customer returns), top_products (5 by 30-day revenue: product_id,
sku, name, units, revenue) from the materialized views as of as_of, and recent_movements (the 10
latest ledger rows, live). low_stock_count and expiring_count use the rules of
low_stock_products (stock levels of active products whose available quantity is at or below
their threshold, one per product and location) and expiring_soon (usable lots with stock
expiring within expiry_warning_days) but are read from the
refresh, so the dashboard stays fast at any size. Security definer to read
private.organization_summary; filtered to private.active_organization(organization_id).';

revoke all on function public.dashboard(uuid) from public, anon;

grant execute on function public.dashboard(uuid) to authenticated;
