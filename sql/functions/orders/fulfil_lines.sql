create or replace function private.fulfil_lines(order_id uuid, lines jsonb)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  ord public.orders;
  entries jsonb;
  over jsonb;
  line record;
  lot record;
begin
  select o.* into ord from public.orders as o where o.id = fulfil_lines.order_id;
  if ord.kind <> 'sales' then
    raise sqlstate 'PT409' using
      message = format('order %s is a purchase order: receive it instead', ord.number),
      detail = ord.id::text,
      hint = 'invalid_transition';
  end if;
  if ord.status not in ('confirmed', 'partially_fulfilled') then
    raise sqlstate 'PT409' using
      message = format('a %s sales order cannot be fulfilled', ord.status),
      detail = format('%s -> fulfilled', ord.status),
      hint = 'invalid_transition';
  end if;
  entries := (
    select jsonb_agg(to_jsonb(x) order by x.entry)
    from private.movement_lines(
      ord.id, fulfil_lines.lines, array['product_id', 'quantity', 'lot_number']
    ) as x
  );

  -- A sales line cannot be fulfilled beyond what is still open on it.
  select jsonb_agg(jsonb_build_object(
    'product_id', i.product_id,
    'requested', t.total,
    'remaining', i.quantity - i.done_quantity
  ) order by i.line_no)
  into over
  from private.item_totals(entries) as t
  inner join public.order_items as i on t.item_id = i.id
  where t.total > i.quantity - i.done_quantity;
  if over is not null then
    raise sqlstate 'PT409' using
      message = 'more than the order line still needs',
      detail = jsonb_build_object('products', over)::text,
      hint = 'over_fulfilment';
  end if;

  -- Stock rows in (product_id, location_id) order, each line's lots after its stock row. The
  -- quantity fulfilled comes out of this order's own reservation.
  for line in
    select x.entry, x.product_id, x.quantity, x.lot_number
    from jsonb_to_recordset(entries) as x (
      entry integer, product_id uuid, quantity numeric, lot_number text
    )
    order by x.product_id, x.entry
  loop
    perform
    from public.stock_levels as s
    where s.product_id = line.product_id and s.location_id = ord.location_id
    for update;
    if line.lot_number is null then
      perform private.take_stock(
        ord.organization_id, line.product_id, ord.location_id, 'sale', line.quantity,
        reserved_release => line.quantity, order_id => ord.id
      );
    else
      select l.id, l.quantity, l.status, l.expiry_date into lot
      from public.lots as l
      where
        l.product_id = line.product_id
        and l.location_id = ord.location_id
        and l.lot_number = line.lot_number
      for update;
      if not found then
        raise sqlstate 'PT404' using
          message = format('lot %s not found at the order''s location', line.lot_number),
          detail = line.lot_number,
          hint = 'not_found';
      end if;
      if not private.lot_usable(lot.status, lot.expiry_date, private.organization_today(ord.organization_id)) then
        raise sqlstate 'PT409' using
          message = format('lot %s is %s and cannot be sold', line.lot_number,
            case when lot.status = 'available' then 'expired' else lot.status end),
          detail = line.lot_number,
          hint = 'lot_unusable';
      end if;
      if lot.quantity < line.quantity then
        raise sqlstate 'PT409' using
          message = 'insufficient stock',
          detail = jsonb_build_object('products', jsonb_build_array(jsonb_build_object(
            'product_id', line.product_id,
            'lot_number', line.lot_number,
            'requested', line.quantity,
            'available', lot.quantity
          )))::text,
          hint = 'insufficient_stock';
      end if;
      perform private.apply_movement(
        ord.organization_id, line.product_id, ord.location_id, 'sale', -line.quantity,
        lot_id => lot.id, order_id => ord.id, reserved_delta => -line.quantity
      );
    end if;
  end loop;

  -- Cost of the line: what its sale movements took out at weighted average cost, per unit.
  update public.order_items as i
  set
    done_quantity = i.done_quantity + t.total,
    unit_cost = coalesce((
      select round(sum(m.wac_value) / sum(m.quantity), 4)
      from public.stock_movements as m
      where m.order_id = ord.id and m.product_id = i.product_id and m.kind = 'sale'
    ), i.unit_cost)
  from private.item_totals(entries) as t
  where i.id = t.item_id;

  perform private.settle_order(ord.id, 'fulfilled', 'partially_fulfilled');
end
$$;

comment on function private.fulfil_lines(uuid, jsonb) is
'Fulfils lines of a confirmed or partially fulfilled sales order (locked by the caller).

lines: [{product_id, quantity, lot_number?}] (private.movement_lines), a product possibly in
several lines (one per lot). Each line takes quantity out of the order''s reservation: from the
named lot (which must be usable: PT409 lot_unusable) or FEFO among usable lots then untracked
stock (private.take_stock). More than a line still needs is PT409 over_fulfilment. Costs are
computed by private.apply_movement; order_items.unit_cost becomes the weighted average cost the
line''s sale movements took out per unit. The order becomes fulfilled when every line is done,
else partially_fulfilled (the rest stays reserved, a backorder). Security invoker: called by the
security definer public.fulfil_order and public.update_order_status.';

revoke all on function private.fulfil_lines(uuid, jsonb) from public, anon, authenticated;
