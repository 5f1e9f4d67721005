-- RLS on public.suppliers: members read; managers create, edit and delete suppliers.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.suppliers enable row level security;

drop policy if exists "members can read suppliers of their organizations"
on public.suppliers;

create policy "members can read suppliers of their organizations"
on public.suppliers
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create suppliers in their organization"
on public.suppliers;

create policy "managers can create suppliers in their organization"
on public.suppliers
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update suppliers of their organizations"
on public.suppliers;

create policy "managers can update suppliers of their organizations"
on public.suppliers
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete suppliers of their organizations"
on public.suppliers;

create policy "managers can delete suppliers of their organizations"
on public.suppliers
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
