create or replace function public.change_member_role(
  user_id uuid, role text, organization_id uuid default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  org uuid := private.active_organization(change_member_role.organization_id);
  member public.memberships;
begin
  if change_member_role.role is null
    or change_member_role.role not in ('owner', 'admin', 'manager', 'staff', 'viewer') then
    raise sqlstate 'PT400' using
      message = 'unknown role',
      detail = coalesce(change_member_role.role, 'null'),
      hint = 'invalid_role';
  end if;
  perform private.guard_member_change(org, change_member_role.user_id, change_member_role.role);
  update public.memberships as m
  set role = change_member_role.role
  where m.organization_id = org and m.user_id = change_member_role.user_id
  returning m.* into member;
  if member.user_id is null then
    raise sqlstate 'PT403' using
      message = 'your role may not change this member',
      detail = change_member_role.user_id::text,
      hint = 'forbidden';
  end if;
  return jsonb_build_object(
    'user_id', member.user_id,
    'organization_id', member.organization_id,
    'role', member.role,
    'created_at', member.created_at,
    'updated_at', member.updated_at
  );
end
$$;

comment on function public.change_member_role(uuid, text, uuid) is
'Changes a member''s role in the chosen organization; returns the membership. Admins manage
managers, staff and viewers (and admins); only an owner makes or demotes an owner (PT403
owner_required); the last owner cannot be demoted (PT409 last_owner); PT404 member_not_found,
PT403 forbidden below admin, PT400 invalid_role. Security invoker: the memberships policies
decide the write as well.';

revoke all on function public.change_member_role(uuid, text, uuid) from public, anon;

grant execute on function public.change_member_role(uuid, text, uuid)
to authenticated, service_role;
