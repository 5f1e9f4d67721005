create or replace function private.receive_lines(order_id uuid, lines jsonb)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  ord public.orders;
  entries jsonb;
  tolerance numeric;
  over jsonb;
  line record;
  lot_id uuid;
begin
  select o.* into ord from public.orders as o where o.id = receive_lines.order_id;
  if ord.kind <> 'purchase' then
    raise sqlstate 'PT409' using
      message = format('order %s is a sales order: fulfil it instead', ord.number),
      detail = ord.id::text,
      hint = 'invalid_transition';
  end if;
  if ord.status not in ('confirmed', 'partially_received') then
    raise sqlstate 'PT409' using
      message = format('a %s purchase order cannot be received', ord.status),
      detail = format('%s -> received', ord.status),
      hint = 'invalid_transition';
  end if;
  entries := (
    select jsonb_agg(to_jsonb(x) order by x.entry)
    from private.movement_lines(
      ord.id, receive_lines.lines,
      array['product_id', 'quantity', 'lot_number', 'expiry_date', 'unit_cost']
    ) as x
  );

  -- Over-receipt: at most quantity * (1 + over_receipt_tolerance) per line, in total.
  tolerance := coalesce((
    select (st.value ->> 'over_receipt_tolerance')::numeric
    from public.settings as st
    where
      st.organization_id = ord.organization_id
      and jsonb_typeof(st.value -> 'over_receipt_tolerance') = 'number'
  ), 0);
  select jsonb_agg(jsonb_build_object(
    'product_id', i.product_id,
    'ordered', i.quantity,
    'received', i.done_quantity,
    'requested', t.total,
    'allowed', greatest(i.quantity * (1 + tolerance) - i.done_quantity, 0)
  ) order by i.line_no)
  into over
  from private.item_totals(entries) as t
  inner join public.order_items as i on t.item_id = i.id
  where i.done_quantity + t.total > i.quantity * (1 + tolerance);
  if over is not null then
    raise sqlstate 'PT409' using
      message = format(
        'more than ordered (over-receipt tolerance %s%%)', round(tolerance * 100, 2)
      ),
      detail = jsonb_build_object('products', over)::text,
      hint = 'over_receipt';
  end if;

  for line in
    select x.entry, x.product_id, x.line_no, x.quantity, x.lot_number, x.expiry_date,
      coalesce(x.unit_cost, i.unit_price) as unit_cost
    from jsonb_to_recordset(entries) as x (
      entry integer, item_id uuid, product_id uuid, line_no integer, quantity numeric,
      lot_number text, expiry_date date, unit_cost numeric
    )
    inner join public.order_items as i on x.item_id = i.id
    order by x.product_id, x.entry
  loop
    perform
    from public.stock_levels as s
    where s.product_id = line.product_id and s.location_id = ord.location_id
    for update;
    lot_id := private.ensure_lot(
      ord.organization_id, line.product_id, ord.location_id,
      coalesce(line.lot_number, format('PO%s-%s', ord.number, line.line_no)),
      line.expiry_date
    );
    perform private.apply_movement(
      ord.organization_id, line.product_id, ord.location_id, 'receipt', line.quantity,
      lot_id => lot_id, unit_cost => line.unit_cost, order_id => ord.id
    );
  end loop;

  -- Cost of the line: the average cost it was received at.
  update public.order_items as i
  set
    done_quantity = i.done_quantity + t.total,
    unit_cost = coalesce((
      select round(sum(coalesce(m.wac_value, m.quantity * m.unit_cost)) / sum(m.quantity), 4)
      from public.stock_movements as m
      where m.order_id = ord.id and m.product_id = i.product_id and m.kind = 'receipt'
    ), i.unit_cost)
  from private.item_totals(entries) as t
  where i.id = t.item_id;

  perform private.settle_order(ord.id, 'received', 'partially_received');
end
$$;

comment on function private.receive_lines(uuid, jsonb) is
'Receives lines of a confirmed or partially received purchase order (locked by the caller).

lines: [{product_id, quantity, lot_number?, expiry_date?, unit_cost?}] (private.movement_lines),
a product possibly in several lines (one per lot). Each line is a receipt movement into its lot
(default PO<number>-<line_no>; private.ensure_lot refuses an expired or mismatched lot) at
unit_cost, default the line''s unit_price: private.apply_movement moves the weighted average and
opens a FIFO layer. A line may be received up to quantity * (1 + the organization setting
over_receipt_tolerance, default 0), else PT409 over_receipt. order_items.unit_cost becomes the
average cost received. The order becomes received when every line is done, else
partially_received. Security invoker: called by the security definer public.receive_order and
public.update_order_status.';

revoke all on function private.receive_lines(uuid, jsonb) from public, anon, authenticated;
