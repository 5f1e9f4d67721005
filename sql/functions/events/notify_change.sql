create or replace function private.notify_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  -- Declared with transition tables (argument 'rows'): a statement that changed no row (an
  -- update or delete matching nothing) reports nothing, so it cools no cache.
  if tg_nargs > 0 and tg_argv[0] = 'rows' then
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
without them (truncate, or several events at once) it always notifies.';

revoke all on function private.notify_change() from public, anon;

grant execute on function private.notify_change() to authenticated, service_role;
