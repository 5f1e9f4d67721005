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
    select o.id, private.organization_today(o.id) as today
    from (select private.active_organization(low_stock_products.organization_id) as id) as o
  ),

  -- private.available_quantity's rule, set-based: one pass over the organization's lots.
  unusable as (
    select
      l.product_id,
      l.location_id,
      sum(l.quantity) as quantity
    from org
    inner join public.lots as l on l.organization_id = org.id
    where l.quantity > 0 and not private.lot_usable(l.status, l.expiry_date, org.today)
    group by l.product_id, l.location_id
  ),

  levels as (
    select
      p.id as product_id,
      p.sku,
      p.name,
      s.location_id,
      s.on_hand,
      s.reserved,
      s.on_hand - s.reserved - coalesce(u.quantity, 0) as available,
      coalesce(
        p.low_stock_threshold, (st.value ->> 'default_low_stock_threshold')::integer, 10
      ) as threshold
    from org
    inner join public.stock_levels as s on s.organization_id = org.id
    inner join public.products as p on p.id = s.product_id
    left join public.settings as st on st.organization_id = org.id
    left join unusable as u on u.product_id = s.product_id and u.location_id = s.location_id
    where
      p.active
      and p.archived_at is null
      and (
        low_stock_products.location_id is null
        or s.location_id = low_stock_products.location_id
      )
  )

  select
    l.product_id,
    l.sku,
    l.name,
    l.location_id,
    l.on_hand,
    l.reserved,
    l.available,
    l.threshold
  from levels as l
  where l.available <= l.threshold
  order by l.available, l.sku, l.location_id
$$;

comment on function public.low_stock_products(uuid, uuid) is
'Active products whose available quantity at a location is at or below their low-stock threshold.

One row per product and location with a stock level (optionally one location), lowest
available first. available = on_hand - reserved - stock in unusable (expired or quarantined)
lots (the rule of private.available_quantity, computed set-based); it may be negative when
reserved stock has expired. Threshold: the rule of private.low_stock_threshold
(products.low_stock_threshold, else the setting default_low_stock_threshold, else 10). The low_stock notification (private.evaluate_low_stock)
uses the same rule. organization_id defaults to the caller''s active organization. Security
invoker: RLS applies.';

revoke all on function public.low_stock_products(uuid, uuid) from public, anon;

grant execute on function public.low_stock_products(uuid, uuid) to authenticated, service_role;
