create or replace function private.guard_ledger()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Deleting a whole organization cascades here: allow it once the organization row is gone.
  if tg_op = 'DELETE' and not exists (
    select from public.organizations as o where o.id = old.organization_id
  ) then
    return old;
  end if;
  if tg_table_name = 'stock_movements' and tg_op in ('UPDATE', 'DELETE') then
    raise sqlstate 'PT409' using
      message = 'stock_movements is append-only',
      detail = format('%s of a ledger row refused', lower(tg_op)),
      hint = 'ledger_append_only';
  end if;
  if coalesce(current_setting('nimbus.ledger_write', true), '') <> 'on' then
    raise sqlstate 'PT409' using
      message = format('%s is written only by the stock and order functions', tg_table_name),
      detail = format('direct %s refused; use adjust_stock, transfer_stock or the order functions',
        lower(tg_op)),
      hint = 'ledger_direct_write';
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  return new;
end
$$;

comment on function private.guard_ledger() is
'Trigger: refuses writes to stock_levels, lots and stock_movements outside the stock functions.

Before row trigger. Those functions set the transaction-local setting nimbus.ledger_write to
on around their writes; anything else (a superuser in the dashboard included) is refused with
PT409. stock_movements is append-only: update and delete are always refused. Deletes cascading
from a deleted organization are allowed. Security definer so that the organization check sees
the row whatever the caller''s RLS.';

revoke all on function private.guard_ledger() from public, anon;

grant execute on function private.guard_ledger() to authenticated, service_role;
