create or replace function private.stock_scope(
  product_id uuid, location_id uuid, min_role text
)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  org uuid;
begin
  if auth.uid() is null then
    raise sqlstate 'PT401' using message = 'authentication required', hint = 'forbidden';
  end if;
  select p.organization_id into org
  from public.products as p
  where p.id = stock_scope.product_id;
  if org is null or not private.is_member(org) then
    raise sqlstate 'PT404' using
      message = 'product not found',
      detail = coalesce(stock_scope.product_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not exists (
    select from public.locations as l
    where l.id = stock_scope.location_id and l.organization_id = org
  ) then
    raise sqlstate 'PT404' using
      message = 'location not found',
      detail = coalesce(stock_scope.location_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not private.has_role(org, stock_scope.min_role) then
    raise sqlstate 'PT403' using
      message = 'your role may not change stock',
      detail = org::text,
      hint = 'forbidden';
  end if;
  return org;
end
$$;

comment on function private.stock_scope(uuid, uuid, text) is
'Organization of a product and location the caller may move stock of, or an error.

PT401 without a user; PT404 not_found when the product is not in one of the caller''s
organizations or the location is not in the product''s organization; PT403 forbidden below
min_role. Security invoker: the security definer stock functions call it first.';

revoke all on function private.stock_scope(uuid, uuid, text) from public, anon, authenticated;
