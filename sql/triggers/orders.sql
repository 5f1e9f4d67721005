-- Triggers on public.orders; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger orders_set_updated_at
before update on public.orders
for each row execute function private.set_updated_at();

create or replace trigger orders_audit
after insert or update or delete on public.orders
for each row execute function private.audit_row('id');

create or replace trigger orders_status_event
after update of status on public.orders
for each row when (old.status is distinct from new.status)
execute function private.order_status_event();

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger orders_notify_change
after truncate on public.orders
for each statement execute function private.notify_change();

create or replace trigger orders_notify_insert
after insert on public.orders
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger orders_notify_update
after update on public.orders
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger orders_notify_delete
after delete on public.orders
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id');
