-- RLS on public.products: members read; managers create, edit and delete products.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.products enable row level security;

drop policy if exists "members can read products of their organizations"
on public.products;

create policy "members can read products of their organizations"
on public.products
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create products in their organization"
on public.products;

create policy "managers can create products in their organization"
on public.products
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update products of their organizations"
on public.products;

create policy "managers can update products of their organizations"
on public.products
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete products of their organizations"
on public.products;

create policy "managers can delete products of their organizations"
on public.products
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
