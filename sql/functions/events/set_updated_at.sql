create or replace function private.set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

comment on function private.set_updated_at() is
'Trigger: stamps updated_at with the transaction time on every update.

Before-update row trigger on every table with an updated_at column, so the column stays
correct whoever writes (PostgREST, the dashboard, a job). Security invoker: it reads nothing.';

revoke all on function private.set_updated_at() from public, anon;

grant execute on function private.set_updated_at() to authenticated, service_role;
