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
'Trigger: a lot received past its date is expired, one inside its expiry window announced.

After insert and update row triggers on lots (sql/triggers/lots_expiring.sql), limited by their
WHEN clauses to lots gaining stock with an expiry date within a year (past dates included); the
rules (lot_expired, lot_expiring) and the once-per-lot guarantee are
private.scan_expiring_lots(new.id). Security definer because clients may not write
notifications nor lots.';

revoke all on function private.lot_expiring_event() from public, anon;

grant execute on function private.lot_expiring_event() to authenticated, service_role;
