-- Triggers on public.organizations; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger organizations_set_updated_at
before update on public.organizations
for each row execute function private.set_updated_at();

create or replace trigger organizations_audit
after insert or update or delete on public.organizations
for each row execute function private.audit_row('id');

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger organizations_notify_change
after truncate on public.organizations
for each statement execute function private.notify_change();

create or replace trigger organizations_notify_insert
after insert on public.organizations
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'id');

create or replace trigger organizations_notify_update
after update on public.organizations
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'id');

create or replace trigger organizations_notify_delete
after delete on public.organizations
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'id');
