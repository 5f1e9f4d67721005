-- RLS on public.organizations: members read; admins rename; owners delete;
-- public.create_organization() creates (with the caller as owner).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.organizations enable row level security;

drop policy if exists "members can read their organizations"
on public.organizations;

create policy "members can read their organizations"
on public.organizations
for select
to authenticated
using (id = any(array(select private.member_organizations())));

drop policy if exists "admins can update their organizations"
on public.organizations;

create policy "admins can update their organizations"
on public.organizations
for update
to authenticated
using (id = any(array(select private.role_organizations('admin'))))
with check (id = any(array(select private.role_organizations('admin'))));

drop policy if exists "owners can delete their organizations"
on public.organizations;

create policy "owners can delete their organizations"
on public.organizations
for delete
to authenticated
using (id = any(array(select private.role_organizations('owner'))));
