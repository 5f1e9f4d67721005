create or replace function private.require_user()
returns uuid
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if auth.uid() is null then
    raise sqlstate 'PT401' using
      message = 'authentication required',
      detail = 'no user in the JWT claims',
      hint = 'unauthorized';
  end if;
  return auth.uid();
end
$$;

comment on function private.require_user() is
'The calling user''s id; PT401 unauthorized when the JWT names no user (an anon key). Used by
the functions that act for a user (active_organization, order_for_change).';

revoke all on function private.require_user() from public, anon;

grant execute on function private.require_user() to authenticated, service_role;
