-- Triggers on public.products; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger products_set_updated_at
before update on public.products
for each row execute function private.set_updated_at();

create or replace trigger products_audit
after insert or update or delete on public.products
for each row execute function private.audit_row('id');

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger products_notify_change
after truncate on public.products
for each statement execute function private.notify_change();

create or replace trigger products_notify_insert
after insert on public.products
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger products_notify_update
after update on public.products
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger products_notify_delete
after delete on public.products
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id');

-- A new threshold, or the product (de)activated or archived: re-judge its stock levels.
create or replace trigger products_low_stock_event
after update of low_stock_threshold, active, archived_at on public.products
for each row when (
  new.low_stock_threshold is distinct from old.low_stock_threshold
  or new.active <> old.active
  or new.archived_at is distinct from old.archived_at
)
execute function private.low_stock_event();
