-- Triggers on public.stock_movements; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger stock_movements_guard_ledger
before insert or update or delete on public.stock_movements
for each row execute function private.guard_ledger();

create or replace trigger stock_movements_guard_truncate
before truncate on public.stock_movements
for each statement execute function private.guard_truncate();

create or replace trigger stock_movements_audit
after insert or update or delete on public.stock_movements
for each row execute function private.audit_row('id');

-- Row changes name the products they touched (a trigger with transition tables takes one
-- event); truncate names none.
create or replace trigger stock_movements_notify_change
after truncate on public.stock_movements
for each statement execute function private.notify_change();

create or replace trigger stock_movements_notify_insert
after insert on public.stock_movements
referencing new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger stock_movements_notify_update
after update on public.stock_movements
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_stock_change('organization_id');

create or replace trigger stock_movements_notify_delete
after delete on public.stock_movements
referencing old table as old_rows
for each statement execute function private.notify_stock_change('organization_id');
