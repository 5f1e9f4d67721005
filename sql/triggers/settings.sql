-- Triggers on public.settings; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger settings_set_updated_at
before update on public.settings
for each row execute function private.set_updated_at();

create or replace trigger settings_audit
after insert or update or delete on public.settings
for each row execute function private.audit_row('organization_id');

create or replace trigger settings_notify_change
after insert or update or delete or truncate on public.settings
for each statement execute function private.notify_change();
