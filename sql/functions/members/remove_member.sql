create or replace function public.remove_member(user_id uuid, organization_id uuid default null)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(remove_member.organization_id);
  old_role text;
begin
  old_role := private.guard_member_change(org, remove_member.user_id, null);
  delete from public.memberships as m
  where m.organization_id = org and m.user_id = remove_member.user_id;
  return jsonb_build_object(
    'user_id', remove_member.user_id,
    'organization_id', org,
    'role', old_role,
    'removed', true
  );
end
$$;

comment on function public.remove_member(uuid, uuid) is
'Removes a member from the chosen organization; returns what was removed. Admins remove
managers, staff and viewers (and admins), only an owner removes an owner (PT403 owner_required),
any member may remove themself; the last owner cannot leave (PT409 last_owner); PT404
member_not_found, PT403 forbidden. Security definer because a member leaving deletes their own
membership, which RLS reserves to admins; private.guard_member_change checks every rule first.';

revoke all on function public.remove_member(uuid, uuid) from public, anon;

grant execute on function public.remove_member(uuid, uuid) to authenticated, service_role;
