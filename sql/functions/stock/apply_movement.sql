create or replace function private.apply_movement(
  organization_id uuid,
  product_id uuid,
  location_id uuid,
  kind text,
  quantity numeric,
  lot_id uuid default null,
  unit_cost numeric default null,
  order_id uuid default null,
  reason text default null,
  transfer_id uuid default null,
  reserved_delta numeric default 0
)
returns bigint
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  movement_id bigint;
begin
  perform set_config('nimbus.ledger_write', 'on', true);
  insert into public.stock_movements as m (
    organization_id, product_id, location_id, lot_id, kind, quantity, unit_cost, order_id,
    reason, transfer_id
  )
  values (
    apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
    apply_movement.lot_id, apply_movement.kind, apply_movement.quantity,
    apply_movement.unit_cost, apply_movement.order_id, apply_movement.reason,
    apply_movement.transfer_id
  )
  returning m.id into movement_id;
  -- Check constraints see the proposed row before ON CONFLICT does, so only an incoming
  -- movement may create the row; an outgoing one updates the row its caller has locked.
  if apply_movement.quantity > 0 then
    insert into public.stock_levels as s (
      organization_id, product_id, location_id, on_hand, reserved
    )
    values (
      apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
      apply_movement.quantity, apply_movement.reserved_delta
    )
    on conflict on constraint stock_levels_pkey do update
    set on_hand = s.on_hand + excluded.on_hand, reserved = s.reserved + excluded.reserved;
  else
    update public.stock_levels as s
    set
      on_hand = s.on_hand + apply_movement.quantity,
      reserved = s.reserved + apply_movement.reserved_delta
    where s.product_id = apply_movement.product_id and s.location_id = apply_movement.location_id;
    if not found then
      raise sqlstate 'PT409' using
        message = 'insufficient stock',
        detail = apply_movement.product_id::text,
        hint = 'insufficient_stock';
    end if;
  end if;
  if apply_movement.lot_id is not null then
    update public.lots as l
    set quantity = l.quantity + apply_movement.quantity
    where l.id = apply_movement.lot_id;
  end if;
  perform set_config('nimbus.ledger_write', 'off', true);
  return movement_id;
end
$$;

comment on function private.apply_movement(
  uuid, uuid, uuid, text, numeric, uuid, numeric, uuid, text, uuid, numeric
) is
'Applies one stock movement: appends the ledger row and updates stock_levels (and the lot).

quantity is signed (see stock_movements.quantity); reserved_delta changes the reservation in
the same step (negative when a sale consumes reserved stock). Callers lock the stock_levels
rows they touch first, in (product_id, location_id) order, and check availability; the check
constraints are the last line of defence. Switches nimbus.ledger_write on only around its own
writes. Security invoker: only the security definer stock and order functions call it.';

revoke all on function private.apply_movement(
  uuid, uuid, uuid, text, numeric, uuid, numeric, uuid, text, uuid, numeric
) from public, anon, authenticated;
