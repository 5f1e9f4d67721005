create or replace function public.low_stock_products(
  location_id uuid default null,
  organization_id uuid default null
)
returns setof public.low_stock_product
language sql
stable
security invoker
set search_path = ''
as $$
  with org as (
    select private.active_organization(low_stock_products.organization_id) as id
  )
  select
    p.id as product_id,
    p.sku,
    p.name,
    s.location_id,
    s.on_hand,
    s.reserved,
    s.on_hand - s.reserved as available,
    coalesce(
      p.low_stock_threshold, (st.value ->> 'default_low_stock_threshold')::integer, 10
    ) as threshold
  from org
  inner join public.stock_levels as s on s.organization_id = org.id
  inner join public.products as p on p.id = s.product_id
  left join public.settings as st on st.organization_id = org.id
  where
    p.active
    and (low_stock_products.location_id is null or s.location_id = low_stock_products.location_id)
    and s.on_hand <= coalesce(
      p.low_stock_threshold, (st.value ->> 'default_low_stock_threshold')::integer, 10
    )
  order by s.on_hand - s.reserved, p.sku, s.location_id
$$;

comment on function public.low_stock_products(uuid, uuid) is
'Active products whose on-hand quantity at a location is at or below their low-stock threshold.

One row per product and location with a stock level (optionally one location), lowest
available first. Threshold: products.low_stock_threshold, else the setting
default_low_stock_threshold, else 10 (the low_stock notification uses the same rule).
organization_id defaults to the caller''s active organization. Security invoker: RLS applies.';

revoke all on function public.low_stock_products(uuid, uuid) from public, anon;

grant execute on function public.low_stock_products(uuid, uuid) to authenticated, service_role;
