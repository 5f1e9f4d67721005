create or replace function public.lookup_product(code text, organization_id uuid default null)
returns setof public.products
language sql
stable
security invoker
set search_path = ''
as $$
  select p.*
  from public.products as p
  where
    (p.barcode = lookup_product.code or p.sku = lookup_product.code)
    and p.organization_id in (select private.member_organizations())
    and (lookup_product.organization_id is null or p.organization_id = lookup_product.organization_id)
  order by (p.barcode = lookup_product.code) desc nulls last, p.organization_id
$$;

comment on function public.lookup_product(text, uuid) is
'Products whose barcode or SKU equals code, in the caller''s organizations (or only in
organization_id when given).

Barcode matches come first. Empty when nothing matches. Security invoker: RLS on products
applies as well.';

revoke all on function public.lookup_product(text, uuid) from public, anon;

grant execute on function public.lookup_product(text, uuid) to authenticated, service_role;
