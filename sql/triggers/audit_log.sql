-- Triggers on public.audit_log; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger audit_log_guard_truncate
before truncate on public.audit_log
for each statement execute function private.guard_truncate();

create or replace trigger audit_log_append_only
before update or delete on public.audit_log
for each row execute function private.guard_audit_log();

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger audit_log_notify_change
after truncate on public.audit_log
for each statement execute function private.notify_change();

create or replace trigger audit_log_notify_insert
after insert on public.audit_log
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger audit_log_notify_update
after update on public.audit_log
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger audit_log_notify_delete
after delete on public.audit_log
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id');
