create or replace function private.lot_expiring_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.scan_expiring_lots(new.id);
  return null;
end
$$;

comment on function private.lot_expiring_event() is
'Trigger: a lot_expiring notification when a lot is received already inside its expiry window.

After insert and update row triggers on lots (sql/triggers/lots_expiring.sql), limited by their
WHEN clauses to lots gaining stock with an expiry date within a year; the window test and the
once-per-lot rule are private.scan_expiring_lots(new.id). Security definer because clients may
not write notifications.';

revoke all on function private.lot_expiring_event() from public, anon;

grant execute on function private.lot_expiring_event() to authenticated, service_role;
