create or replace function private.notify_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  organizations uuid[];
  users uuid[];
begin
  -- Declared with transition tables (argument 'rows'): a statement that changed no row (an
  -- update or delete matching nothing) reports nothing, so it cools no cache. Further
  -- arguments name the columns whose distinct values it reports: 'organization_id' (tables
  -- whose rows each belong to one organization; 'id' for organizations itself), 'user_id'
  -- (memberships, notification_reads); more than 20 of either are reported as a change of the
  -- whole table.
  if
    tg_nargs > 1 and tg_argv[0] = 'rows'
    and ('organization_id' = any(tg_argv) or 'id' = any(tg_argv) or 'user_id' = any(tg_argv))
  then
    if 'id' = any(tg_argv) then  -- organizations: each row is one
      if tg_op = 'INSERT' then
        select array_agg(d.id) into organizations
        from (select n.id from new_rows as n limit 21) as d;
      elsif tg_op = 'DELETE' then
        select array_agg(d.id) into organizations
        from (select o.id from old_rows as o limit 21) as d;
      else
        select array_agg(d.id) into organizations
        from (
          select o.id from old_rows as o
          union
          select n.id from new_rows as n
          limit 21
        ) as d;
      end if;
    elsif 'organization_id' = any(tg_argv) then
      if tg_op = 'INSERT' then
        select array_agg(d.organization_id) into organizations
        from (select distinct n.organization_id from new_rows as n limit 21) as d;
      elsif tg_op = 'DELETE' then
        select array_agg(d.organization_id) into organizations
        from (select distinct o.organization_id from old_rows as o limit 21) as d;
      else
        select array_agg(d.organization_id) into organizations
        from (
          select o.organization_id from old_rows as o
          union
          select n.organization_id from new_rows as n
          limit 21
        ) as d;
      end if;
    end if;
    if 'user_id' = any(tg_argv) then
      if tg_op = 'INSERT' then
        select array_agg(d.user_id) into users
        from (select distinct n.user_id from new_rows as n limit 21) as d;
      elsif tg_op = 'DELETE' then
        select array_agg(d.user_id) into users
        from (select distinct o.user_id from old_rows as o limit 21) as d;
      else
        select array_agg(d.user_id) into users
        from (
          select o.user_id from old_rows as o
          union
          select n.user_id from new_rows as n
          limit 21
        ) as d;
      end if;
    end if;
    if organizations is null and users is null then
      return null;  -- the statement changed no row
    end if;
    if coalesce(cardinality(organizations), 0) <= 20 and coalesce(cardinality(users), 0) <= 20 then
      perform pg_notify(
        'nimbus_changes',
        json_strip_nulls(
          json_build_object(
            'table', tg_table_name,
            'op', lower(tg_op),
            'organizations', organizations,
            'users', users
          )
        )::text
      );
      return null;
    end if;
  elsif tg_nargs > 0 and tg_argv[0] = 'rows' then
    if tg_op = 'DELETE' then
      perform from old_rows limit 1;
    elsif tg_op in ('INSERT', 'UPDATE') then
      perform from new_rows limit 1;
    end if;
    if tg_op <> 'TRUNCATE' and not found then
      return null;
    end if;
  end if;
  perform pg_notify(
    'nimbus_changes',
    json_build_object('table', tg_table_name, 'op', lower(tg_op))::text
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
either are reported without them, as a change of the whole table.';

revoke all on function private.notify_change() from public, anon;

grant execute on function private.notify_change() to authenticated, service_role;
