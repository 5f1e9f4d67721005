create or replace function private.role_rank(role text)
returns integer
language plpgsql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
begin
  -- plpgsql: evaluated without a parse in every transaction, as a SQL function with SET is.
  return case role_rank.role
    when 'viewer' then 1
    when 'staff' then 2
    when 'manager' then 3
    when 'admin' then 4
    when 'owner' then 5
  end;
end
$$;

comment on function private.role_rank(text) is
'Rank of a membership role: viewer 1 < staff 2 < manager 3 < admin 4 < owner 5.

Null for an unknown role, so a comparison with it is never true. Security invoker: it reads
no table.';

revoke all on function private.role_rank(text) from public, anon;

grant execute on function private.role_rank(text) to authenticated, service_role;
