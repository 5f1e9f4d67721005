-- Statement timeouts for the roles PostgREST impersonates (issue 13): no single request may hold
-- a database connection for long. PostgREST 12 reads the settings of the roles it switches to
-- (pg_db_role_setting) and applies them per request, so `anon` queries are cancelled after 3 s
-- and `authenticated` ones after 8 s, hosted Supabase's defaults. PostgREST answers a cancelled
-- query with SQLSTATE 57014, which the proxy turns into a 504 JSON error.
--
-- Hosted Supabase already gives both roles these settings; an operator may have changed them
-- (docs/OPERATIONS.md: `alter role authenticated set statement_timeout = '15s'`). A role that
-- already has a statement_timeout of its own keeps it: only a role without one gets the default.
-- Role settings are cluster-wide, like the roles. A running PostgREST picks them up on
-- `notify pgrst, 'reload config'` (nimbus migrate sends it) or a restart.

do $$
declare
  wanted record;
begin
  for wanted in
    select v.role_name, v.timeout
    from (values ('anon', '3s'), ('authenticated', '8s')) as v (role_name, timeout)
  loop
    if not exists (
      select
      from pg_catalog.pg_db_role_setting as s
      where
        s.setrole = wanted.role_name::regrole
        and s.setdatabase = 0
        and exists (select from unnest(s.setconfig) as c (kv) where c.kv like 'statement_timeout=%')
    ) then
      execute format('alter role %I set statement_timeout = %L', wanted.role_name, wanted.timeout);
    end if;
  end loop;
end
$$;
