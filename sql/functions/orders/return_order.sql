create or replace function public.return_order(
  order_id uuid,
  lines jsonb,
  reason text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
  entries jsonb;
  over jsonb;
  line record;
  chosen_lot uuid;
  lot_quantity numeric;
  lot_ok boolean;
  level record;
  wac numeric;
  fifo numeric;
begin
  ord := private.order_for_change(return_order.order_id);
  if char_length(return_order.reason) > 500 then
    raise sqlstate 'PT422' using
      message = 'reason may have at most 500 characters',
      detail = 'reason',
      hint = 'validation_failed';
  end if;
  entries := (
    select jsonb_agg(to_jsonb(x) order by x.entry)
    from private.movement_lines(
      ord.id, return_order.lines, array['product_id', 'quantity', 'lot_number']
    ) as x
  );

  -- Never more back than moved: done_quantity - returned_quantity per line.
  select jsonb_agg(jsonb_build_object(
    'product_id', i.product_id,
    'requested', t.total,
    'returnable', i.done_quantity - i.returned_quantity
  ) order by i.line_no)
  into over
  from private.item_totals(entries) as t
  inner join public.order_items as i on t.item_id = i.id
  where t.total > i.done_quantity - i.returned_quantity;
  if over is not null then
    raise sqlstate 'PT409' using
      message = format(
        'more than was %s and not yet returned',
        case when ord.kind = 'sales' then 'fulfilled' else 'received' end
      ),
      detail = jsonb_build_object('products', over)::text,
      hint = 'over_return';
  end if;

  for line in
    select x.entry, x.product_id, x.quantity, x.lot_number
    from jsonb_to_recordset(entries) as x (
      entry integer, product_id uuid, quantity numeric, lot_number text
    )
    order by x.product_id, x.entry
  loop
    select s.on_hand, s.reserved into level
    from public.stock_levels as s
    where s.product_id = line.product_id and s.location_id = ord.location_id
    for update;
    chosen_lot := null;
    if line.lot_number is not null then
      select l.id, l.quantity, private.lot_usable(
        l.status, l.expiry_date, private.organization_today(l.organization_id)
      )
      into chosen_lot, lot_quantity, lot_ok
      from public.lots as l
      where
        l.product_id = line.product_id
        and l.location_id = ord.location_id
        and l.lot_number = line.lot_number
      for update;
      if chosen_lot is null then
        raise sqlstate 'PT404' using
          message = format('lot %s not found at the order''s location', line.lot_number),
          detail = line.lot_number,
          hint = 'not_found';
      end if;
    end if;

    if ord.kind = 'sales' then
      -- Customer return into stock, at the cost the goods left with (both methods).
      if chosen_lot is not null and not exists (
        select from public.stock_movements as m
        where m.order_id = ord.id and m.lot_id = chosen_lot and m.kind = 'sale'
      ) then
        raise sqlstate 'PT422' using
          message = format('lot %s was not sold by this order', line.lot_number),
          detail = 'lot_number',
          hint = 'validation_failed';
      end if;
      select
        round(sum(m.wac_value) / sum(m.quantity), 6),
        round(sum(m.fifo_value) / sum(m.quantity), 6)
      into wac, fifo
      from public.stock_movements as m
      where m.order_id = ord.id and m.product_id = line.product_id and m.kind = 'sale';
      wac := coalesce(wac, (
        select i.unit_cost from public.order_items as i
        where i.order_id = ord.id and i.product_id = line.product_id
      ));
      perform private.apply_movement(
        ord.organization_id, line.product_id, ord.location_id, 'return', line.quantity,
        lot_id => chosen_lot, unit_cost => wac, order_id => ord.id, reason => return_order.reason,
        fifo_unit_cost => coalesce(fifo, wac)
      );
    elsif chosen_lot is null then
      -- Return to the supplier out of stock: FEFO among usable lots, then untracked stock.
      perform private.take_stock(
        ord.organization_id, line.product_id, ord.location_id, 'return', line.quantity,
        order_id => ord.id, reason => return_order.reason
      );
    else
      -- From a named lot, which may be expired or quarantined (that is often why it goes
      -- back), but never taking stock that confirmed sales orders hold.
      if lot_quantity < line.quantity
        or coalesce(level.on_hand - level.reserved, 0) < line.quantity
        or (
          lot_ok
          and private.available_quantity(line.product_id, ord.location_id) < line.quantity
        ) then
        raise sqlstate 'PT409' using
          message = 'insufficient stock',
          detail = jsonb_build_object('products', jsonb_build_array(jsonb_build_object(
            'product_id', line.product_id,
            'lot_number', line.lot_number,
            'requested', line.quantity,
            'available', least(lot_quantity, coalesce(level.on_hand - level.reserved, 0))
          )))::text,
          hint = 'insufficient_stock';
      end if;
      perform private.apply_movement(
        ord.organization_id, line.product_id, ord.location_id, 'return', -line.quantity,
        lot_id => chosen_lot, order_id => ord.id, reason => return_order.reason
      );
    end if;
  end loop;

  update public.order_items as i
  set returned_quantity = i.returned_quantity + t.total
  from private.item_totals(entries) as t
  where i.id = t.item_id;
  return private.order_json(ord.id);
end
$$;

comment on function public.return_order(uuid, jsonb, text) is
'Returns goods of an order; returns the order as JSON.

lines: [{product_id, quantity, lot_number?}]; reason (optional, at most 500 characters) is kept
on the movements. A sales order: a customer return into stock at the order''s location, as a
positive return movement costed at what the sale took out per unit (weighted average and FIFO
cost of the order''s sale movements), into the named lot (one this order sold from, else PT422)
or untracked stock. A purchase order: a return to the supplier out of stock, a negative return
movement costed by the ledger, from the named lot (even expired or quarantined) or FEFO among
usable lots; reserved stock is never taken (PT409 insufficient_stock). A line never returns
more than was fulfilled or received and not yet returned (order_items.returned_quantity grows):
PT409 over_return. Sales need staff, purchases manager (PT403); PT404 not_found; PT422
validation_failed naming the field. Security definer because it writes the ledger and stock,
which clients may not write; it checks membership and role itself (private.order_for_change).';

revoke all on function public.return_order(uuid, jsonb, text) from public, anon;

grant execute on function public.return_order(uuid, jsonb, text) to authenticated, service_role;
