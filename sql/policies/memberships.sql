-- RLS on public.memberships: users read their own memberships, members read
-- co-members, admins manage them; only an owner grants, changes or removes the owner role.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.memberships enable row level security;

drop policy if exists "users can read their own memberships"
on public.memberships;

create policy "users can read their own memberships"
on public.memberships
for select
to authenticated
using (user_id = (select auth.uid()));

drop policy if exists "members can read memberships of their organizations"
on public.memberships;

create policy "members can read memberships of their organizations"
on public.memberships
for select
to authenticated
using ((select private.is_member(organization_id)));

drop policy if exists "admins can add members to their organization"
on public.memberships;

create policy "admins can add members to their organization"
on public.memberships
for insert
to authenticated
with check (
  (select private.has_role(organization_id, 'admin'))
  and (role <> 'owner' or (select private.has_role(organization_id, 'owner')))
);

drop policy if exists "admins can change roles in their organization"
on public.memberships;

create policy "admins can change roles in their organization"
on public.memberships
for update
to authenticated
using (
  (select private.has_role(organization_id, 'admin'))
  and (role <> 'owner' or (select private.has_role(organization_id, 'owner')))
)
with check (
  (select private.has_role(organization_id, 'admin'))
  and (role <> 'owner' or (select private.has_role(organization_id, 'owner')))
);

drop policy if exists "admins can remove members from their organization"
on public.memberships;

create policy "admins can remove members from their organization"
on public.memberships
for delete
to authenticated
using (
  (select private.has_role(organization_id, 'admin'))
  and (role <> 'owner' or (select private.has_role(organization_id, 'owner')))
);
