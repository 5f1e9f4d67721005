create or replace function private.is_member(org uuid)
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
      and m.organization_id = is_member.org
  );
end
$$;

comment on function private.is_member(uuid) is
'True when the calling user (auth.uid()) is a member of organization org, in any role.

For functions that check one organization. Policies use member_organizations() instead: a call
with a row''s column would run once per row. Security definer because it reads
public.memberships, which has RLS of its own. It only ever answers about auth.uid().';

revoke all on function private.is_member(uuid) from public, anon;

grant execute on function private.is_member(uuid) to authenticated, service_role;
