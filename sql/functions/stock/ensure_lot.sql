create or replace function private.ensure_lot(
  organization_id uuid,
  product_id uuid,
  location_id uuid,
  lot_number text,
  expiry_date date default null
)
returns uuid
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  lot_id uuid;
begin
  perform set_config('nimbus.ledger_write', 'on', true);
  insert into public.lots as l (organization_id, product_id, location_id, lot_number, expiry_date)
  values (
    ensure_lot.organization_id, ensure_lot.product_id, ensure_lot.location_id,
    ensure_lot.lot_number, ensure_lot.expiry_date
  )
  on conflict on constraint lots_product_id_location_id_lot_number_key do nothing
  returning l.id into lot_id;
  perform set_config('nimbus.ledger_write', 'off', true);
  if lot_id is null then
    select l.id into lot_id
    from public.lots as l
    where
      l.product_id = ensure_lot.product_id
      and l.location_id = ensure_lot.location_id
      and l.lot_number = ensure_lot.lot_number
    for update;
  end if;
  return lot_id;
end
$$;

comment on function private.ensure_lot(uuid, uuid, uuid, text, date) is
'Id of the lot with this number for the product at the location, created (empty) if missing.

An existing lot keeps its expiry date. Quantity changes only through private.apply_movement.
Security invoker: only the security definer stock and order functions call it.';

revoke all on function private.ensure_lot(uuid, uuid, uuid, text, date)
from public, anon, authenticated;
