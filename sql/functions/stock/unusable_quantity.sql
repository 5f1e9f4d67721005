create or replace function private.unusable_quantity(product_id uuid, location_id uuid)
returns numeric
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(sum(l.quantity), 0)
  from public.lots as l
  where
    l.product_id = unusable_quantity.product_id
    and l.location_id = unusable_quantity.location_id
    and l.quantity > 0
    and not private.lot_usable(
      l.status, l.expiry_date, private.organization_today(l.organization_id)
    )
$$;

comment on function private.unusable_quantity(uuid, uuid) is
'Quantity of a product at a location held in lots that cannot be used (expired or quarantined).';

revoke all on function private.unusable_quantity(uuid, uuid) from public, anon;

grant execute on function private.unusable_quantity(uuid, uuid) to authenticated, service_role;
