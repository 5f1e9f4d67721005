-- RLS on public.products: members read; managers create, edit and delete products.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.products enable row level security;

drop policy if exists "members can read products of their organizations"
on public.products;

create policy "members can read products of their organizations"
on public.products
for select
to authenticated
using ((select private.is_member(organization_id)));

drop policy if exists "managers can create products in their organization"
on public.products;

create policy "managers can create products in their organization"
on public.products
for insert
to authenticated
with check ((select private.has_role(organization_id, 'manager')));

drop policy if exists "managers can update products of their organizations"
on public.products;

create policy "managers can update products of their organizations"
on public.products
for update
to authenticated
using ((select private.has_role(organization_id, 'manager')))
with check ((select private.has_role(organization_id, 'manager')));

drop policy if exists "managers can delete products of their organizations"
on public.products;

create policy "managers can delete products of their organizations"
on public.products
for delete
to authenticated
using ((select private.has_role(organization_id, 'manager')));
