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
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "admins can add members to their organization"
on public.memberships;

create policy "admins can add members to their organization"
on public.memberships
for insert
to authenticated
with check (
  organization_id = any(array(select private.role_organizations('admin')))
  and (
    role <> 'owner'
    or organization_id = any(array(select private.role_organizations('owner')))
  )
);

drop policy if exists "admins can change roles in their organization"
on public.memberships;

create policy "admins can change roles in their organization"
on public.memberships
for update
to authenticated
using (
  organization_id = any(array(select private.role_organizations('admin')))
  and (
    role <> 'owner'
    or organization_id = any(array(select private.role_organizations('owner')))
  )
)
with check (
  organization_id = any(array(select private.role_organizations('admin')))
  and (
    role <> 'owner'
    or organization_id = any(array(select private.role_organizations('owner')))
  )
);

drop policy if exists "admins can remove members from their organization"
on public.memberships;

create policy "admins can remove members from their organization"
on public.memberships
for delete
to authenticated
using (
  organization_id = any(array(select private.role_organizations('admin')))
  and (
    role <> 'owner'
    or organization_id = any(array(select private.role_organizations('owner')))
  )
);
