-- Triggers on public.lots; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger lots_guard_ledger
before insert or update or delete on public.lots
for each row execute function private.guard_ledger();

create or replace trigger lots_guard_truncate
before truncate on public.lots
for each statement execute function private.guard_truncate();

create or replace trigger lots_set_updated_at
before update on public.lots
for each row execute function private.set_updated_at();

create or replace trigger lots_audit
after insert or update or delete on public.lots
for each row execute function private.audit_row('id');

-- Row changes name the products they touched (a trigger with transition tables takes one
-- event); truncate names none.
create or replace trigger lots_notify_change
after truncate on public.lots
for each statement execute function private.notify_change();

create or replace trigger lots_notify_insert
after insert on public.lots
referencing new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger lots_notify_update
after update on public.lots
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger lots_notify_delete
after delete on public.lots
referencing old table as old_rows
for each statement execute function private.notify_stock_change('organization_id');

-- A lot's stock, status or expiry moves the product's available stock there: re-judge low
-- stock once the transaction's writes are done (see sql/triggers/stock_levels.sql).
drop trigger if exists lots_low_stock_on_insert on public.lots;

create constraint trigger lots_low_stock_on_insert
after insert on public.lots
deferrable initially deferred
for each row when (new.quantity > 0)
execute function private.low_stock_event();

drop trigger if exists lots_low_stock_on_update on public.lots;

create constraint trigger lots_low_stock_on_update
after update of quantity, status, expiry_date on public.lots
deferrable initially deferred
for each row when (
  new.quantity <> old.quantity
  or new.status <> old.status
  or new.expiry_date is distinct from old.expiry_date
)
execute function private.low_stock_event();
