create or replace function private.notify_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  -- The proxy's token of the write that ran this statement (proxy/cache/ownwrites.py), from the
  -- header PostgREST passes on in request.headers (aeson's compact JSON); none for a write made
  -- any other way. Sent with the transaction's id: the proxy trusts a token for the first
  -- transaction heard with it only.
  token text := substring(
    current_setting('request.headers', true) from '"x-nimbus-write":"([0-9a-f]{32})"'
  );
  ids uuid[];
  organizations uuid[];
  users uuid[];
  named text;
begin
  -- Declared with transition tables (argument 'rows'): a statement that changed no row (an
  -- update or delete matching nothing) reports nothing, so it cools no cache. Further
  -- arguments name the columns whose distinct values it reports: 'organization_id' (tables
  -- whose rows each belong to one organization; 'id' for organizations itself), 'user_id'
  -- (memberships, notification_reads); more than 20 of either are reported as a change of the
  -- whole table. Static statements (planned once per trigger and session; the column is read
  -- from each row's JSON): every write runs this several times.
  if tg_nargs > 0 and tg_argv[0] = 'rows' and tg_op <> 'TRUNCATE' then
    if tg_op = 'DELETE' then
      perform from old_rows limit 1;
    else
      perform from new_rows limit 1;  -- an update has as many new rows as old
    end if;
    if not found then
      return null;  -- the statement changed no row
    end if;
    foreach named in array tg_argv[1:] loop
      continue when named not in ('organization_id', 'id', 'user_id');
      if tg_op = 'INSERT' then
        select array_agg(d.v) into ids
        from (select distinct (to_jsonb(n) ->> named)::uuid as v from new_rows as n limit 21) as d;
      elsif tg_op = 'DELETE' then
        select array_agg(d.v) into ids
        from (select distinct (to_jsonb(o) ->> named)::uuid as v from old_rows as o limit 21) as d;
      else
        select array_agg(d.v) into ids
        from (
          select (to_jsonb(o) ->> named)::uuid as v from old_rows as o
          union
          select (to_jsonb(n) ->> named)::uuid as v from new_rows as n
          limit 21
        ) as d;
      end if;
      if cardinality(ids) > 20 then
        organizations := null;
        users := null;
        exit;
      elsif named = 'user_id' then
        users := ids;
      else
        organizations := ids;
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
        'write', token,
        'tx', case when token is not null then pg_current_xact_id()::text end
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
carries its token (the X-Nimbus-Write header, 32 hex digits) as "write" and the transaction id
as "tx": the proxy that sent it bumps the notification with the write''s own bump
(proxy/cache/ownwrites.py).';

revoke all on function private.notify_change() from public, anon;

grant execute on function private.notify_change() to authenticated, service_role;
