-- RLS on public.locations: members read; managers create, edit and delete locations.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.locations enable row level security;

drop policy if exists "members can read locations of their organizations"
on public.locations;

create policy "members can read locations of their organizations"
on public.locations
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create locations in their organization"
on public.locations;

create policy "managers can create locations in their organization"
on public.locations
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update locations of their organizations"
on public.locations;

create policy "managers can update locations of their organizations"
on public.locations
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete locations of their organizations"
on public.locations;

create policy "managers can delete locations of their organizations"
on public.locations
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
