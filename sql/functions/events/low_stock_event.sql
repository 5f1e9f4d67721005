create or replace function private.low_stock_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_table_name = 'settings' then
    perform private.evaluate_low_stock(null, null, new.organization_id);
  elsif tg_table_name = 'products' then
    perform private.evaluate_low_stock(new.id);
  else
    -- stock_levels and lots: the product at that location.
    perform private.evaluate_low_stock(new.product_id, new.location_id);
  end if;
  return null;
end
$$;

comment on function private.low_stock_event() is
'Trigger: re-judges low stock where a change can move it; alerts once per crossing.

After row trigger on stock_levels (on_hand, reserved) and lots (quantity, status, expiry) -
deferred constraint triggers, so the verdict is taken once the transaction''s stock writes are
all done - and on products (low_stock_threshold, active, archived_at: every level of the
product) and settings (default_low_stock_threshold: every level of the organization). The rule
and the once-per-crossing state are private.evaluate_low_stock. Security definer because
clients may not write notifications nor the private state.';

revoke all on function private.low_stock_event() from public, anon;

grant execute on function private.low_stock_event() to authenticated, service_role;
