-- Triggers on public.organizations; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger organizations_set_updated_at
before update on public.organizations
for each row execute function private.set_updated_at();

create or replace trigger organizations_audit
after insert or update or delete on public.organizations
for each row execute function private.audit_row('id');

create or replace trigger organizations_notify_change
after insert or update or delete or truncate on public.organizations
for each statement execute function private.notify_change();
