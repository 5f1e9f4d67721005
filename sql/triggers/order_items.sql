-- Triggers on public.order_items; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger order_items_set_updated_at
before update on public.order_items
for each row execute function private.set_updated_at();

create or replace trigger order_items_audit
after insert or update or delete on public.order_items
for each row execute function private.audit_row('id');

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger order_items_notify_change
after truncate on public.order_items
for each statement execute function private.notify_change();

create or replace trigger order_items_notify_insert
after insert on public.order_items
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger order_items_notify_update
after update on public.order_items
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger order_items_notify_delete
after delete on public.order_items
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id');
