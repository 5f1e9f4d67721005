create or replace function private.has_role(org uuid, min_role text)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return exists (
    select
    from public.memberships as m
    where
      m.user_id = (select auth.uid())
      and m.organization_id = has_role.org
      and private.role_rank(m.role) >= private.role_rank(has_role.min_role)
  );
end
$$;

comment on function private.has_role(uuid, text) is
'True when the calling user is a member of organization org with a role of at least min_role.

Rank order viewer < staff < manager < admin < owner (private.role_rank); an unknown min_role
is never satisfied. For functions that check one organization; policies use
role_organizations(min_role), computed once per statement. Security definer because it reads
public.memberships, which has RLS of its own. It only ever answers about auth.uid().';

revoke all on function private.has_role(uuid, text) from public, anon;

grant execute on function private.has_role(uuid, text) to authenticated, service_role;
