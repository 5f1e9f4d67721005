create or replace function private.role_rank(role text)
returns integer
language sql
immutable
parallel safe
security invoker
-- Neither a search_path of its own nor STRICT (a null role matches no case: null anyway), so
-- that it is inlined into the calling query (a function with SET runs as a call, its body
-- parsed anew in every transaction). It reads no table and names only built-in operators,
-- which pg_catalog (searched first) provides.
as $$
  select case role_rank.role
    when 'viewer' then 1
    when 'staff' then 2
    when 'manager' then 3
    when 'admin' then 4
    when 'owner' then 5
  end
$$;

comment on function private.role_rank(text) is
'Rank of a membership role: viewer 1 < staff 2 < manager 3 < admin 4 < owner 5.

Null for an unknown role, so a comparison with it is never true. Security invoker: it reads
no table.';

revoke all on function private.role_rank(text) from public, anon;

grant execute on function private.role_rank(text) to authenticated, service_role;
