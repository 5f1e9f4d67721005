-- Triggers on public.stock_levels; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger stock_levels_guard_ledger
before insert or update or delete on public.stock_levels
for each row execute function private.guard_ledger();

create or replace trigger stock_levels_guard_truncate
before truncate on public.stock_levels
for each statement execute function private.guard_truncate();

create or replace trigger stock_levels_set_updated_at
before update on public.stock_levels
for each row execute function private.set_updated_at();

create or replace trigger stock_levels_audit
after insert or update or delete on public.stock_levels
for each row execute function private.audit_row('product_id', 'location_id');

-- Low stock is judged on available stock once the transaction's stock writes are done
-- (deferred: a movement updates the level before its lot). Constraint triggers cannot be
-- replaced in place, hence drop and create.
drop trigger if exists stock_levels_low_stock_event on public.stock_levels;

create constraint trigger stock_levels_low_stock_event
after update of on_hand, reserved on public.stock_levels
deferrable initially deferred
for each row when (new.on_hand <> old.on_hand or new.reserved <> old.reserved)
execute function private.low_stock_event();

drop trigger if exists stock_levels_low_stock_on_insert on public.stock_levels;

create constraint trigger stock_levels_low_stock_on_insert
after insert on public.stock_levels
deferrable initially deferred
for each row execute function private.low_stock_event();

-- Row changes name the products they touched (a trigger with transition tables takes one
-- event); truncate names none.
create or replace trigger stock_levels_notify_change
after truncate on public.stock_levels
for each statement execute function private.notify_change();

create or replace trigger stock_levels_notify_insert
after insert on public.stock_levels
referencing new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger stock_levels_notify_update
after update on public.stock_levels
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger stock_levels_notify_delete
after delete on public.stock_levels
referencing old table as old_rows
for each statement execute function private.notify_stock_change('organization_id');
