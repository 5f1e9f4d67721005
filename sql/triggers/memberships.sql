-- Triggers on public.memberships; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger memberships_set_updated_at
before update on public.memberships
for each row execute function private.set_updated_at();

create or replace trigger memberships_audit
after insert or update or delete on public.memberships
for each row execute function private.audit_row('user_id', 'organization_id');

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger memberships_notify_change
after truncate on public.memberships
for each statement execute function private.notify_change();

create or replace trigger memberships_notify_insert
after insert on public.memberships
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id', 'user_id');

create or replace trigger memberships_notify_update
after update on public.memberships
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id', 'user_id');

create or replace trigger memberships_notify_delete
after delete on public.memberships
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id', 'user_id');

create or replace trigger memberships_keep_an_owner
after update or delete on public.memberships
for each row execute function private.keep_an_owner();
