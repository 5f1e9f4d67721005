create or replace function private.role_organizations(min_role text)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.organization_id
  from public.memberships as m
  where
    m.user_id = (select auth.uid())
    and private.role_rank(m.role) >= private.role_rank(role_organizations.min_role)
$$;

comment on function private.role_organizations(text) is
'Ids of the organizations where the calling user (auth.uid()) has a role of at least min_role.

Rank order viewer < staff < manager < admin < owner (private.role_rank); an unknown min_role
matches no organization. For RLS policies, as
organization_id = any(array(select private.role_organizations(''manager''))): the argument
is a constant, so the set is an InitPlan computed once per statement and the comparison can
use an index on organization_id (a per-row private.has_role(organization_id, ...) cannot).
Security definer because it reads public.memberships, which has RLS whose own policies call
this function: run as the caller it would recurse or see nothing. It only ever answers about
auth.uid().';

revoke all on function private.role_organizations(text) from public, anon;

grant execute on function private.role_organizations(text) to authenticated, service_role;
