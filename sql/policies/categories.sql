-- RLS on public.categories: members read; managers create, edit and delete categories.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.categories enable row level security;

drop policy if exists "members can read categories of their organizations"
on public.categories;

create policy "members can read categories of their organizations"
on public.categories
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create categories in their organization"
on public.categories;

create policy "managers can create categories in their organization"
on public.categories
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update categories of their organizations"
on public.categories;

create policy "managers can update categories of their organizations"
on public.categories
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete categories of their organizations"
on public.categories;

create policy "managers can delete categories of their organizations"
on public.categories
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
