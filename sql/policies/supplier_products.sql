-- RLS on public.supplier_products: members read; managers create, edit and delete which
-- suppliers sell which products.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.supplier_products enable row level security;

drop policy if exists "members can read the supplier terms of their organizations"
on public.supplier_products;

create policy "members can read the supplier terms of their organizations"
on public.supplier_products
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create supplier terms in their organization"
on public.supplier_products;

create policy "managers can create supplier terms in their organization"
on public.supplier_products
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update supplier terms of their organizations"
on public.supplier_products;

create policy "managers can update supplier terms of their organizations"
on public.supplier_products
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete supplier terms of their organizations"
on public.supplier_products;

create policy "managers can delete supplier terms of their organizations"
on public.supplier_products
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
