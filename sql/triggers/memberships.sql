-- Triggers on public.memberships; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger memberships_set_updated_at
before update on public.memberships
for each row execute function private.set_updated_at();

create or replace trigger memberships_audit
after insert or update or delete on public.memberships
for each row execute function private.audit_row('user_id', 'organization_id');

create or replace trigger memberships_notify_change
after insert or update or delete or truncate on public.memberships
for each statement execute function private.notify_change();
