create or replace function public.set_lot_status(lot_id uuid, status text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  lot public.lots;
  prior text := current_setting('nimbus.ledger_write', true);
begin
  if auth.uid() is null then
    raise sqlstate 'PT401' using message = 'authentication required', hint = 'forbidden';
  end if;
  if set_lot_status.status is null or set_lot_status.status not in ('available', 'quarantined') then
    raise sqlstate 'PT422' using
      message = 'status must be available or quarantined',
      detail = 'status',
      hint = 'validation_failed';
  end if;
  select l.organization_id into org from public.lots as l where l.id = set_lot_status.lot_id;
  if org is null or not private.is_member(org) then
    raise sqlstate 'PT404' using
      message = 'lot not found',
      detail = coalesce(set_lot_status.lot_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not private.has_role(org, 'manager') then
    raise sqlstate 'PT403' using
      message = 'your role may not change the status of a lot',
      detail = org::text,
      hint = 'forbidden';
  end if;
  select l.* into lot from public.lots as l where l.id = set_lot_status.lot_id for update;
  if lot.status = 'expired' or lot.expiry_date < private.organization_today(org) then
    raise sqlstate 'PT409' using
      message = format('lot %s expired on %s: its status can no longer change', lot.lot_number,
        lot.expiry_date),
      detail = lot.id::text,
      hint = 'lot_expired';
  end if;
  if lot.status <> set_lot_status.status then
    perform set_config('nimbus.ledger_write', 'on', true);
    update public.lots as l
    set status = set_lot_status.status
    where l.id = lot.id
    returning l.* into lot;
    perform set_config('nimbus.ledger_write', coalesce(prior, 'off'), true);
  end if;
  return to_jsonb(lot);
end
$$;

comment on function public.set_lot_status(uuid, text) is
'Quarantines a lot or releases it back to available; returns the lot.

status: available or quarantined (PT422 otherwise). A quarantined lot is never reserved,
picked, sold or moved and does not count as available (low-stock alerts follow). An expired
lot (status expired, or past its expiry_date by the organization''s date) keeps its status: PT409 lot_expired. Manager and
above (PT403 forbidden); PT404 not_found when the lot is not in one of the caller''s
organizations. Security definer only because clients may not write public.lots (the stock
functions alone do, under nimbus.ledger_write).';

revoke all on function public.set_lot_status(uuid, text) from public, anon;

grant execute on function public.set_lot_status(uuid, text) to authenticated, service_role;
