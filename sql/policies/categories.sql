-- RLS on public.categories: members read; managers create, edit and delete categories.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.categories enable row level security;

drop policy if exists "members can read categories of their organizations"
on public.categories;

create policy "members can read categories of their organizations"
on public.categories
for select
to authenticated
using ((select private.is_member(organization_id)));

drop policy if exists "managers can create categories in their organization"
on public.categories;

create policy "managers can create categories in their organization"
on public.categories
for insert
to authenticated
with check ((select private.has_role(organization_id, 'manager')));

drop policy if exists "managers can update categories of their organizations"
on public.categories;

create policy "managers can update categories of their organizations"
on public.categories
for update
to authenticated
using ((select private.has_role(organization_id, 'manager')))
with check ((select private.has_role(organization_id, 'manager')));

drop policy if exists "managers can delete categories of their organizations"
on public.categories;

create policy "managers can delete categories of their organizations"
on public.categories
for delete
to authenticated
using ((select private.has_role(organization_id, 'manager')));
