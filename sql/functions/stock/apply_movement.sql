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
  reserved_delta numeric default 0,
  fifo_unit_cost numeric default null,
  cost_source bigint default null
)
returns bigint
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  new_movement_id bigint;
  costs record;
  qty numeric := private.check_number(apply_movement.quantity, 'quantity', 3);
  taking numeric := -qty;
  in_cost numeric;
  wac numeric;
  fifo numeric := 0;
  layer record;
  piece numeric;
  piece_value numeric;
  take_layers bigint[] := '{}'::bigint[];
  take_quantities numeric[] := '{}'::numeric[];
  take_values numeric[] := '{}'::numeric[];
begin
  if qty = 0 then
    raise sqlstate 'PT422' using
      message = 'a stock movement needs a non-zero quantity',
      detail = 'quantity',
      hint = 'validation_failed';
  end if;
  if not exists (
    select from public.locations as l
    where l.id = apply_movement.location_id and l.active
  ) then
    raise sqlstate 'PT409' using
      message = 'location is inactive: it takes no stock movements',
      detail = apply_movement.location_id::text,
      hint = 'location_inactive';
  end if;

  -- The product's cost row, locked: every movement of a product moves its average.
  insert into private.product_costs as c (product_id, organization_id, last_average)
  select p.id, p.organization_id, p.unit_cost
  from public.products as p
  where p.id = apply_movement.product_id
  on conflict on constraint product_costs_pkey do nothing;
  select c.quantity, c.value, c.last_average into costs
  from private.product_costs as c
  where c.product_id = apply_movement.product_id
  for update;

  if qty > 0 then
    if apply_movement.cost_source is not null then
      -- A transfer in: exactly the value its transfer_out took, at both methods.
      select -m.wac_value, -m.fifo_value into wac, fifo
      from public.stock_movements as m
      where m.id = apply_movement.cost_source;
      in_cost := round(wac / qty, 4);
    else
      in_cost := private.check_number(round(coalesce(
        apply_movement.unit_cost,
        case when costs.quantity > 0 then costs.value / costs.quantity end,
        costs.last_average,
        0
      ), 6), 'unit_cost', 6, 0);
      wac := round(qty * in_cost, 4);
      fifo := round(qty * private.check_number(
        round(coalesce(apply_movement.fifo_unit_cost, in_cost), 6), 'fifo_unit_cost', 6, 0
      ), 4);
    end if;
  else
    wac := case
      when costs.quantity <= taking then costs.value
      else round(costs.value * taking / costs.quantity, 4)
    end;
    in_cost := round(wac / taking, 4);
    -- FIFO: the oldest layers at this location first.
    for layer in
      select cl.id, cl.remaining, cl.remaining_value
      from private.cost_layers as cl
      where
        cl.product_id = apply_movement.product_id
        and cl.location_id = apply_movement.location_id
        and cl.remaining > 0
      order by cl.received_at, cl.id
      for update
    loop
      exit when taking <= 0;
      piece := least(layer.remaining, taking);
      piece_value := case
        when piece = layer.remaining then layer.remaining_value
        else round(layer.remaining_value * piece / layer.remaining, 4)
      end;
      update private.cost_layers as cl
      set remaining = cl.remaining - piece, remaining_value = cl.remaining_value - piece_value
      where cl.id = layer.id;
      take_layers := take_layers || layer.id;
      take_quantities := take_quantities || piece;
      take_values := take_values || piece_value;
      fifo := fifo + piece_value;
      taking := taking - piece;
    end loop;
    -- Stock without layers (only if the ledger was edited around the functions) is valued at
    -- the average, so a shipment never fails on bookkeeping; the invariant test reports it.
    if taking > 0 then
      fifo := fifo + round(taking * coalesce(wac / -qty, 0), 4);
    end if;
    wac := -wac;
    fifo := -fifo;
  end if;

  perform set_config('nimbus.ledger_write', 'on', true);
  insert into public.stock_movements as m (
    organization_id, product_id, location_id, lot_id, kind, quantity, unit_cost, order_id,
    reason, transfer_id, wac_value, fifo_value
  )
  values (
    apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
    apply_movement.lot_id, apply_movement.kind, qty, in_cost, apply_movement.order_id,
    apply_movement.reason, apply_movement.transfer_id, wac, fifo
  )
  returning m.id into new_movement_id;

  if qty > 0 and apply_movement.cost_source is not null then
    -- The layers the transfer_out consumed, recreated here with their dates and costs.
    insert into private.cost_layers (
      organization_id, product_id, location_id, received_at, quantity, remaining,
      remaining_value, unit_cost, movement_id
    )
    select
      apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
      cl.received_at, t.quantity, t.quantity, t.value, cl.unit_cost, new_movement_id
    from private.cost_layer_takes as t
    inner join private.cost_layers as cl on t.layer_id = cl.id
    where t.movement_id = apply_movement.cost_source;
  elsif qty > 0 then
    insert into private.cost_layers (
      organization_id, product_id, location_id, received_at, quantity, remaining,
      remaining_value, unit_cost, movement_id
    )
    values (
      apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
      clock_timestamp(), qty, qty, fifo,
      round(coalesce(apply_movement.fifo_unit_cost, in_cost), 6),
      new_movement_id
    );
  else
    insert into private.cost_layer_takes (movement_id, layer_id, quantity, value)
    select new_movement_id, x.layer_id, x.quantity, x.value
    from unnest(take_layers, take_quantities, take_values) as x (layer_id, quantity, value);
  end if;

  update private.product_costs as c
  set
    quantity = c.quantity + qty,
    value = c.value + wac,
    last_average = case
      when c.quantity + qty > 0 then (c.value + wac) / (c.quantity + qty)
      else c.last_average
    end,
    updated_at = now()
  where c.product_id = apply_movement.product_id;

  if qty > 0 and coalesce((
    select s.on_hand from public.stock_levels as s
    where s.product_id = apply_movement.product_id and s.location_id = apply_movement.location_id
  ), 0) + qty >= 100000000000 then
    raise sqlstate 'PT422' using
      message = 'quantity would take the stock level past 99,999,999,999.999',
      detail = 'quantity',
      hint = 'validation_failed';
  end if;

  -- Check constraints see the proposed row before ON CONFLICT does, so only an incoming
  -- movement may create the row; an outgoing one updates the row its caller has locked.
  if qty > 0 then
    insert into public.stock_levels as s (
      organization_id, product_id, location_id, on_hand, reserved
    )
    values (
      apply_movement.organization_id, apply_movement.product_id, apply_movement.location_id,
      qty, apply_movement.reserved_delta
    )
    on conflict on constraint stock_levels_pkey do update
    set on_hand = s.on_hand + excluded.on_hand, reserved = s.reserved + excluded.reserved;
  else
    update public.stock_levels as s
    set
      on_hand = s.on_hand + qty,
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
    set quantity = l.quantity + qty
    where l.id = apply_movement.lot_id;
  end if;
  perform set_config('nimbus.ledger_write', 'off', true);
  return new_movement_id;
end
$$;

comment on function private.apply_movement(
  uuid, uuid, uuid, text, numeric, uuid, numeric, uuid, text, uuid, numeric, numeric, bigint
) is
'Applies one stock movement: the ledger row with its cost, stock_levels, the lot, and costing.

quantity is signed (see stock_movements.quantity) and has at most 3 decimals (callers check the
product''s own decimals first); reserved_delta changes the reservation in the same step. An
inactive location refuses every movement (PT409 location_inactive). Costing, here only:
inbound stock comes in at unit_cost (default: the current weighted average, else the last one,
else the catalog cost), moves the product''s weighted average and opens a FIFO layer at
fifo_unit_cost (default unit_cost); cost_source names a transfer_out whose exact value and layers
a transfer_in brings. Outbound stock takes value * taken / quantity at average cost and consumes
the location''s oldest layers (private.cost_layer_takes); both values are recorded on the row.
Callers lock the stock_levels rows they touch first, in (product_id, location_id) order; the
product_costs row is locked here, after them. Security invoker: only the stock and order
functions call it.';

revoke all on function private.apply_movement(
  uuid, uuid, uuid, text, numeric, uuid, numeric, uuid, text, uuid, numeric, numeric, bigint
) from public, anon, authenticated;
