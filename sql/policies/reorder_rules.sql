-- RLS on public.reorder_rules: members read; managers create, edit and delete reorder rules.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.reorder_rules enable row level security;

drop policy if exists "members can read reorder rules of their organizations"
on public.reorder_rules;

create policy "members can read reorder rules of their organizations"
on public.reorder_rules
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can create reorder rules in their organization"
on public.reorder_rules;

create policy "managers can create reorder rules in their organization"
on public.reorder_rules
for insert
to authenticated
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can update reorder rules of their organizations"
on public.reorder_rules;

create policy "managers can update reorder rules of their organizations"
on public.reorder_rules
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));

drop policy if exists "managers can delete reorder rules of their organizations"
on public.reorder_rules;

create policy "managers can delete reorder rules of their organizations"
on public.reorder_rules
for delete
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))));
