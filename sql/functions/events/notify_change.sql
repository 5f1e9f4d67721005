create or replace function private.notify_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  changed text;
  any_row boolean;
  found uuid[];
  organizations uuid[];
  users uuid[];
  named text;
begin
  -- Declared with transition tables (argument 'rows'): a statement that changed no row (an
  -- update or delete matching nothing) reports nothing, so it cools no cache. Further
  -- arguments name the columns whose distinct values it reports: 'organization_id' (tables
  -- whose rows each belong to one organization; 'id' for organizations itself), 'user_id'
  -- (memberships, notification_reads); more than 20 of either are reported as a change of the
  -- whole table.
  if tg_nargs > 0 and tg_argv[0] = 'rows' and tg_op <> 'TRUNCATE' then
    changed := case tg_op
      when 'INSERT' then 'new_rows'
      when 'DELETE' then 'old_rows'
      else '(select * from old_rows union all select * from new_rows)'
    end;
    execute format('select exists (select from %s as s)', changed) into any_row;
    if not any_row then
      return null;  -- the statement changed no row
    end if;
    foreach named in array tg_argv[1:] loop
      continue when named not in ('organization_id', 'id', 'user_id');
      execute format(
        'select array_agg(d.v) from (select distinct s.%I as v from %s as s limit 21) as d',
        named,
        changed
      ) into found;
      if cardinality(found) > 20 then
        organizations := null;
        users := null;
        exit;
      elsif named = 'user_id' then
        users := found;
      else
        organizations := found;
      end if;
    end loop;
  end if;
  perform pg_notify(
    'nimbus_changes',
    json_strip_nulls(
      json_build_object(
        'table', tg_table_name,
        'op', lower(tg_op),
        'organizations', organizations,
        'users', users,
        -- The proxy's token of the write that ran this statement (proxy/cache/ownwrites.py),
        -- from the header PostgREST passes on in request.headers (aeson's compact JSON); none
        -- for a write made any other way.
        'write', substring(
          current_setting('request.headers', true) from '"x-nimbus-write":"([0-9a-f]{32})"'
        )
      )
    )::text
  );
  return null;
end
$$;

comment on function private.notify_change() is
'Trigger: NOTIFY nimbus_changes with {"table": ..., "op": ...} once per writing statement.

Statement-level trigger on every public table, so the proxy can drop cached reads of that
table. PostgreSQL delivers it at commit and folds identical payloads of one transaction.
Declared per event with a transition table and the argument ''rows'' (new_rows for insert and
update, old_rows for delete), it stays silent for a statement that changed no row; declared
without them (truncate, or several events at once) it always notifies. Further arguments name
columns whose distinct values of the changed rows the payload adds: ''organization_id''
(tables whose rows each belong to one organization; ''id'' for organizations) as
"organizations", so the proxy drops only
those organizations'' cached reads (docs/ARCHITECTURE.md); ''user_id'' (memberships,
notification_reads) as "users", whose cached reads depend on their own rows. More than 20 of
either are reported without them, as a change of the whole table. A write sent by the proxy
carries its token (the X-Nimbus-Write header, 32 hex digits) as "write": the proxy that sent it
bumps the notification with the write''s own bump (proxy/cache/ownwrites.py).';

revoke all on function private.notify_change() from public, anon;

grant execute on function private.notify_change() to authenticated, service_role;
