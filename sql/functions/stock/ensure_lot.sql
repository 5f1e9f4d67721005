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
  lot record;
begin
  if ensure_lot.expiry_date < private.organization_today(ensure_lot.organization_id) then
    raise sqlstate 'PT422' using
      message = 'an expired lot cannot be received',
      detail = format('lot %s expired on %s', ensure_lot.lot_number, ensure_lot.expiry_date),
      hint = 'validation_failed';
  end if;
  perform set_config('nimbus.ledger_write', 'on', true);
  insert into public.lots as l (organization_id, product_id, location_id, lot_number, expiry_date)
  values (
    ensure_lot.organization_id, ensure_lot.product_id, ensure_lot.location_id,
    ensure_lot.lot_number, ensure_lot.expiry_date
  )
  on conflict on constraint lots_product_id_location_id_lot_number_key do nothing
  returning l.id, l.expiry_date, l.status into lot;
  perform set_config('nimbus.ledger_write', 'off', true);
  if lot.id is null then
    select l.id, l.expiry_date, l.status into lot
    from public.lots as l
    where
      l.product_id = ensure_lot.product_id
      and l.location_id = ensure_lot.location_id
      and l.lot_number = ensure_lot.lot_number
    for update;
    if ensure_lot.expiry_date is not null
      and lot.expiry_date is distinct from ensure_lot.expiry_date then
      raise sqlstate 'PT409' using
        message = format(
          'lot %s already exists here with expiry date %s', ensure_lot.lot_number,
          coalesce(lot.expiry_date::text, 'none')
        ),
        detail = jsonb_build_object(
          'lot_number', ensure_lot.lot_number,
          'expiry_date', lot.expiry_date,
          'requested_expiry_date', ensure_lot.expiry_date
        )::text,
        hint = 'lot_expiry_mismatch';
    end if;
    if lot.status = 'expired' then
      raise sqlstate 'PT422' using
        message = 'an expired lot cannot take more stock',
        detail = ensure_lot.lot_number,
        hint = 'validation_failed';
    end if;
  end if;
  return lot.id;
end
$$;

comment on function private.ensure_lot(uuid, uuid, uuid, text, date) is
'Id of the lot with this number for the product at the location, created (empty) if missing,
for stock coming in.

Refuses stock into a lot that is already expired (expiry date before the organization''s today, or status expired:
PT422 validation_failed) and into an existing lot number with another expiry date (PT409
lot_expiry_mismatch: the same lot number cannot carry two dates); no date means the lot''s
own. Quantity changes only through private.apply_movement. Security invoker: only the security
definer stock and order functions call it.';

revoke all on function private.ensure_lot(uuid, uuid, uuid, text, date)
from public, anon, authenticated;
