create or replace function private.low_stock_threshold(product_id uuid)
returns integer
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(
    p.low_stock_threshold,
    (s.value ->> 'default_low_stock_threshold')::integer,
    10
  )
  from public.products as p
  left join public.settings as s on s.organization_id = p.organization_id
  where p.id = low_stock_threshold.product_id
$$;

comment on function private.low_stock_threshold(uuid) is
'Quantity at or below which a product is low on stock at a location.

products.low_stock_threshold, else the organization setting default_low_stock_threshold,
else 10. public.low_stock_products and private.evaluate_low_stock apply the same rule inline
(set-based); change them together. Security invoker: its callers already run with the right
to read the product.';

revoke all on function private.low_stock_threshold(uuid) from public, anon;

grant execute on function private.low_stock_threshold(uuid) to authenticated, service_role;
