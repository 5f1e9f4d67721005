create or replace function private.active_organization(requested uuid default null)
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  claimed uuid;
  found uuid;
  n int;
begin
  perform private.require_user();
  if requested is not null then
    if private.is_member(requested) then
      return requested;
    end if;
    raise sqlstate 'PT403' using
      message = 'not a member of this organization',
      detail = requested::text,
      hint = 'forbidden';
  end if;
  claimed := nullif(auth.jwt() ->> 'organization_id', '')::uuid;
  if claimed is not null and private.is_member(claimed) then
    return claimed;
  end if;
  select min(m.organization_id::text)::uuid, count(*)
  into found, n
  from public.memberships as m
  where m.user_id = auth.uid();
  if n = 1 then
    return found;
  end if;
  if n = 0 then
    raise sqlstate 'PT400' using
      message = 'no organization',
      detail = 'the caller belongs to no organization; create one or ask to be invited',
      hint = 'no_organization';
  end if;
  raise sqlstate 'PT400' using
    message = 'organization required',
    detail = format(
      'the caller belongs to %s organizations: pass organization_id (or the X-Organization-Id'
      ' header)', n
    ),
    hint = 'organization_required';
end
$$;

comment on function private.active_organization(uuid) is
'The organization a call acts on: the requested one if the caller is a member (else 403), else
the JWT''s organization_id claim if the caller is still a member, else the caller''s only
membership (else PT400 with hint organization_required when the caller has several
memberships, no_organization when none; the detail says what to do). Not authenticated: PT401
unauthorized.

Security invoker: it reads only the caller''s own memberships, which RLS lets every user read
(private.is_member, a definer lookup, checks a requested or claimed organization). Analytics and
order functions call it so that RLS stays correct without the custom access token hook.';

revoke all on function private.active_organization(uuid) from public, anon;

grant execute on function private.active_organization(uuid) to authenticated, service_role;
