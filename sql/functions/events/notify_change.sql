create or replace function private.notify_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
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
table. PostgreSQL delivers it at commit and folds identical payloads of one transaction.';

revoke all on function private.notify_change() from public, anon;

grant execute on function private.notify_change() to authenticated, service_role;
