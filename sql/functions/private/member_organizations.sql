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

For RLS policies, as organization_id in (select private.member_organizations()). Security
definer because it reads public.memberships, which has RLS whose own policies call this
function: run as the caller it would recurse or see nothing. It only ever answers about
auth.uid().';

revoke all on function private.member_organizations() from public, anon;

grant execute on function private.member_organizations() to authenticated, service_role;
