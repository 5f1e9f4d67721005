create or replace function private.guard_truncate()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  if coalesce(current_setting('nimbus.ledger_write', true), '') <> 'on' then
    raise sqlstate 'PT409' using
      message = format('truncating %s is refused', tg_table_name),
      detail = 'the ledger, stock and audit tables are append-only',
      hint = 'ledger_append_only';
  end if;
  return null;
end
$$;

comment on function private.guard_truncate() is
'Trigger: refuses TRUNCATE of the ledger, stock and audit tables.

Before truncate statement trigger; a maintenance job may set nimbus.ledger_write to on in its
transaction to bypass it. Security invoker: it reads nothing.';

revoke all on function private.guard_truncate() from public, anon;

grant execute on function private.guard_truncate() to authenticated, service_role;
