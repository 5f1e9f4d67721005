create or replace function private.guard_member_change(
  org uuid, target uuid, new_role text default null
)
returns text
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  old_role text;
  owners int;
begin
  perform private.require_user();
  -- One change of an organization's members at a time: two owners demoting each other at once
  -- would otherwise both see the other one still there.
  perform pg_advisory_xact_lock(hashtextextended('nimbus.members:' || org::text, 0));
  select m.role into old_role
  from public.memberships as m
  where m.organization_id = guard_member_change.org and m.user_id = guard_member_change.target;
  if old_role is null or not private.is_member(org) then
    raise sqlstate 'PT404' using
      message = 'no such member',
      detail = target::text,
      hint = 'member_not_found';
  end if;
  if not (new_role is null and target = auth.uid()) then
    if not private.has_role(org, 'admin') then
      raise sqlstate 'PT403' using
        message = 'only admins and owners manage members',
        detail = target::text,
        hint = 'forbidden';
    end if;
    if (old_role = 'owner' or new_role = 'owner') and not private.has_role(org, 'owner') then
      raise sqlstate 'PT403' using
        message = 'only an owner makes, demotes or removes owners',
        detail = target::text,
        hint = 'owner_required';
    end if;
  end if;
  if old_role = 'owner' and new_role is distinct from 'owner' then
    select count(*) into owners
    from public.memberships as m
    where m.organization_id = guard_member_change.org and m.role = 'owner';
    if owners <= 1 then
      raise sqlstate 'PT409' using
        message = 'the last owner cannot leave or be demoted',
        detail = 'make another member owner first',
        hint = 'last_owner';
    end if;
  end if;
  return old_role;
end
$$;

comment on function private.guard_member_change(uuid, uuid, text) is
'Checks that the caller may change member target of organization org to new_role (null: remove
it) and returns its current role. Locks the organization''s member changes for the transaction.
PT404 member_not_found when target (or the caller) is not a member; PT403 forbidden unless the
caller is an admin or owner (a member may always remove themself); PT403 owner_required when the
owner role is granted, taken or removed by a non-owner; PT409 last_owner when the change would
leave the organization without an owner. Security invoker: its callers decide whose rights apply.';

revoke all on function private.guard_member_change(uuid, uuid, text) from public, anon;

grant execute on function private.guard_member_change(uuid, uuid, text)
to authenticated, service_role;
