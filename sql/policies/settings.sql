-- RLS on public.settings: members read; admins create and update.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.settings enable row level security;

drop policy if exists "members can read settings of their organizations"
on public.settings;

create policy "members can read settings of their organizations"
on public.settings
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "admins can create settings of their organizations"
on public.settings;

create policy "admins can create settings of their organizations"
on public.settings
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('admin'))));

drop policy if exists "admins can update settings of their organizations"
on public.settings;

create policy "admins can update settings of their organizations"
on public.settings
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('admin'))))
with check (organization_id = any(array(select private.role_organizations('admin'))));
