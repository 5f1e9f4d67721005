-- lot_expiring events on public.lots; re-applied by every `nimbus migrate` (create or replace).
-- Kept apart from sql/triggers/lots.sql so that the expiry rule reads in one place. The WHEN
-- clauses only pre-filter (365 days is the largest expiry_warning_days the settings allow, and an
-- organization's date may be up to two days from the server's):
-- private.scan_expiring_lots decides (lot_expiring inside the window; a lot already past its date
-- is set to expired and announced as lot_expired). A lot that enters the window or passes its
-- date later, as days pass, is found by the scan that every analytics refresh runs.

create or replace trigger lots_expiring_on_insert
after insert on public.lots
for each row
when (new.quantity > 0 and new.expiry_date <= current_date + 367)
execute function private.lot_expiring_event();

create or replace trigger lots_expiring_on_update
after update of quantity, expiry_date on public.lots
for each row
when (
  new.quantity > 0
  and new.expiry_date <= current_date + 367
  and (new.quantity > old.quantity or new.expiry_date is distinct from old.expiry_date)
)
execute function private.lot_expiring_event();
