create or replace function private.lot_usable(status text, expiry_date date, today date)
returns boolean
language sql
immutable
security invoker
set search_path = ''
as $$
  select
    lot_usable.status = 'available'
    and (lot_usable.expiry_date is null or lot_usable.expiry_date >= lot_usable.today)
$$;

comment on function private.lot_usable(text, date, date) is
'True when a lot with this status and expiry date may be reserved, picked, sold or moved on the
date today: status available and not past its expiry date (a lot is usable through its expiry
day). today is the organization''s date (private.organization_today), not the server''s.

Expiry is judged on the date, not only on the status the expiry scan sets, so a lot is
unusable from the first day after its date even before the scan has run.';

revoke all on function private.lot_usable(text, date, date) from public, anon;

grant execute on function private.lot_usable(text, date, date) to authenticated, service_role;
