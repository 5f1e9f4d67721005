create or replace function public.invite_member(
  email text, role text, organization_id uuid default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(invite_member.organization_id);
  address text := lower(btrim(coalesce(invite_member.email, '')));
  uid uuid;
  created boolean := false;
  member public.memberships;
begin
  if not private.has_role(org, 'admin') then
    raise sqlstate 'PT403' using
      message = 'only admins and owners invite members',
      detail = org::text,
      hint = 'forbidden';
  end if;
  if invite_member.role is null
    or invite_member.role not in ('owner', 'admin', 'manager', 'staff', 'viewer') then
    raise sqlstate 'PT400' using
      message = 'unknown role',
      detail = coalesce(invite_member.role, 'null'),
      hint = 'invalid_role';
  end if;
  if invite_member.role = 'owner' and not private.has_role(org, 'owner') then
    raise sqlstate 'PT403' using
      message = 'only an owner makes owners',
      detail = org::text,
      hint = 'owner_required';
  end if;
  if address !~ '^[^@\s]+@[^@\s]+$' then
    raise sqlstate 'PT400' using
      message = 'invalid e-mail address',
      detail = address,
      hint = 'invalid_email';
  end if;
  select u.id into uid from auth.users as u where lower(u.email) = address;
  if uid is null then
    -- Supabase Auth's users table has encrypted_password; the local stand-in does not.
    if exists (
      select from pg_catalog.pg_attribute as a
      where
        a.attrelid = 'auth.users'::regclass
        and a.attname = 'encrypted_password'
        and not a.attisdropped
    ) then
      raise sqlstate 'PT501' using
        message = 'inviting a new user through Supabase Auth is not implemented yet',
        detail = 'invite the user from the Supabase dashboard, then add them here',
        hint = 'invite_unavailable';
    end if;
    insert into auth.users (email) values (address) returning id into uid;
    created := true;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('nimbus.members:' || org::text, 0));
  insert into public.memberships as m (user_id, organization_id, role)
  values (uid, org, invite_member.role)
  on conflict do nothing
  returning m.* into member;
  if member.user_id is null then
    raise sqlstate 'PT409' using
      message = 'already a member',
      detail = uid::text,
      hint = 'already_member';
  end if;
  return jsonb_build_object(
    'user_id', member.user_id,
    'organization_id', member.organization_id,
    'email', address,
    'role', member.role,
    'created_at', member.created_at,
    'updated_at', member.updated_at,
    'user_created', created
  );
end
$$;

comment on function public.invite_member(text, text, uuid) is
'Adds the user with this e-mail address to the chosen organization with role; returns the
membership. Admins and owners invite; only an owner invites an owner (PT403 owner_required);
PT409 already_member; PT400 invalid_role, invalid_email. An unknown address creates the user
in the local auth stand-in (plain PostgreSQL); with Supabase Auth it is PT501
invite_unavailable (its admin invite is not implemented yet). Security definer because it reads
and (locally) writes auth.users, which clients cannot access; it checks the caller''s role
first.';

revoke all on function public.invite_member(text, text, uuid) from public, anon;

grant execute on function public.invite_member(text, text, uuid) to authenticated, service_role;
