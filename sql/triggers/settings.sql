-- Triggers on public.settings; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger settings_set_updated_at
before update on public.settings
for each row execute function private.set_updated_at();

create or replace trigger settings_audit
after insert or update or delete on public.settings
for each row execute function private.audit_row('organization_id');

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger settings_notify_change
after truncate on public.settings
for each statement execute function private.notify_change();

create or replace trigger settings_notify_insert
after insert on public.settings
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger settings_notify_update
after update on public.settings
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'organization_id');

create or replace trigger settings_notify_delete
after delete on public.settings
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'organization_id');

-- A new default threshold: re-judge the organization's stock levels (one statement).
create or replace trigger settings_low_stock_event
after update of value on public.settings
for each row when (
  new.value -> 'default_low_stock_threshold'
  is distinct from old.value -> 'default_low_stock_threshold'
)
execute function private.low_stock_event();

-- A time zone must be one PostgreSQL knows: analytics count the organization's days in it.
create or replace trigger settings_timezone_known
before insert or update of value on public.settings
for each row when (new.value ? 'timezone')
execute function private.settings_timezone_known();
