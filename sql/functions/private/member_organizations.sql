create or replace function private.member_organizations()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.organization_id
  from public.memberships as m
  where m.user_id = (select auth.uid())
$$;

comment on function private.member_organizations() is
'Ids of the organizations the calling user (auth.uid()) belongs to.

For RLS policies, as organization_id = any(array(select private.member_organizations())):
computed once per statement, and usable as an index condition. Security definer because it
reads public.memberships, whose own policies call it: as the caller it would recurse. It only
ever answers about auth.uid().';

revoke all on function private.member_organizations() from public, anon;

grant execute on function private.member_organizations() to authenticated, service_role;
