create or replace function private.set_reserved(
  product_id uuid, location_id uuid, delta numeric
)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
begin
  perform set_config('nimbus.ledger_write', 'on', true);
  update public.stock_levels as s
  set reserved = s.reserved + set_reserved.delta
  where s.product_id = set_reserved.product_id and s.location_id = set_reserved.location_id;
  perform set_config('nimbus.ledger_write', 'off', true);
end
$$;

comment on function private.set_reserved(uuid, uuid, numeric) is
'Changes the reserved quantity of one stock_levels row by delta (no ledger row: on hand is
unchanged).

Used when a sales order is confirmed (reserve) or cancelled (release). The caller holds the
row lock and has checked availability. Security invoker: only the order functions call it.';

revoke all on function private.set_reserved(uuid, uuid, numeric) from public, anon, authenticated;
