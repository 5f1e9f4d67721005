-- RLS on public.audit_log: admins read their organization's trail; triggers write it.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.audit_log enable row level security;

drop policy if exists "admins can read audit log of their organizations"
on public.audit_log;

create policy "admins can read audit log of their organizations"
on public.audit_log
for select
to authenticated
using (organization_id = any(array(select private.role_organizations('admin'))));
