create or replace function public.update_order_status(
  order_id uuid,
  status text,
  lots jsonb default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
  line record;
  rest jsonb;
begin
  ord := private.order_for_change(update_order_status.order_id);
  if coalesce(update_order_status.status, '') not in (
    'draft', 'confirmed', 'partially_fulfilled', 'fulfilled', 'partially_received', 'received',
    'cancelled'
  ) then
    raise sqlstate 'PT422' using
      message = 'unknown order status',
      detail = coalesce(update_order_status.status, 'null'),
      hint = 'validation_failed';
  end if;
  if not (
    (ord.status = 'draft' and update_order_status.status in ('confirmed', 'cancelled'))
    or (ord.status = 'confirmed' and update_order_status.status = 'cancelled')
    or (
      ord.status in ('confirmed', 'partially_fulfilled') and ord.kind = 'sales'
      and update_order_status.status = 'fulfilled'
    )
    or (
      ord.status in ('confirmed', 'partially_received') and ord.kind = 'purchase'
      and update_order_status.status = 'received'
    )
  ) then
    raise sqlstate 'PT409' using
      message = format('a %s order cannot go from %s to %s%s', ord.kind, ord.status,
        update_order_status.status,
        case
          when ord.status like 'partially%' then ' (close it short with close_order instead)'
          else ''
        end),
      detail = format('%s -> %s', ord.status, update_order_status.status),
      hint = 'invalid_transition';
  end if;

  if update_order_status.status = 'fulfilled' then
    -- Everything still open, FEFO (private.fulfil_lines sets the status).
    rest := (
      select jsonb_agg(jsonb_build_object(
        'product_id', i.product_id, 'quantity', i.quantity - i.done_quantity
      ) order by i.line_no)
      from public.order_items as i
      where i.order_id = ord.id and i.done_quantity < i.quantity
    );
    perform private.fulfil_lines(ord.id, rest);
    return private.order_json(ord.id);
  elsif update_order_status.status = 'received' then
    -- Everything still open, into the lots named in lots (private.receive_lines checks them).
    if update_order_status.lots is not null
      and jsonb_typeof(update_order_status.lots) <> 'array' then
      raise sqlstate 'PT422' using
        message = 'lots must be an array',
        detail = 'lots',
        hint = 'validation_failed';
    end if;
    rest := (
      select jsonb_agg(
        jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity - i.done_quantity)
        || coalesce((
          select jsonb_strip_nulls(jsonb_build_object(
            'lot_number', x -> 'lot_number', 'expiry_date', x -> 'expiry_date'
          ))
          from jsonb_array_elements(coalesce(update_order_status.lots, '[]'::jsonb)) as x
          where x ->> 'product_id' = i.product_id::text
          limit 1
        ), '{}'::jsonb)
        order by i.line_no
      )
      from public.order_items as i
      where i.order_id = ord.id and i.done_quantity < i.quantity
    );
    perform private.receive_lines(ord.id, rest);
    return private.order_json(ord.id);
  end if;

  if ord.kind = 'sales' and update_order_status.status = 'confirmed' then
    perform private.reserve_check(
      ord.location_id,
      (
        select jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', i.quantity))
        from public.order_items as i
        where i.order_id = ord.id
      )
    );
    for line in
      select i.product_id, i.quantity from public.order_items as i
      where i.order_id = ord.id
      order by i.product_id
    loop
      perform private.set_reserved(line.product_id, ord.location_id, line.quantity);
    end loop;
  elsif ord.kind = 'sales' and ord.status = 'confirmed' and update_order_status.status = 'cancelled'
    then
    for line in
      select i.product_id, i.quantity - i.done_quantity as open
      from public.order_items as i
      where i.order_id = ord.id and i.done_quantity < i.quantity
      order by i.product_id
    loop
      perform
      from public.stock_levels as s
      where s.product_id = line.product_id and s.location_id = ord.location_id
      for update;
      perform private.set_reserved(line.product_id, ord.location_id, -line.open);
    end loop;
  end if;

  update public.orders as o
  set
    status = update_order_status.status,
    confirmed_at = case
      when update_order_status.status = 'confirmed' then now() else o.confirmed_at
    end,
    cancelled_at = case when update_order_status.status = 'cancelled' then now() end
  where o.id = ord.id;
  return private.order_json(ord.id);
end
$$;

comment on function public.update_order_status(uuid, text, jsonb) is
'Moves an order to a new status, with its stock effects, in one transaction; returns it as JSON.

Legal: draft -> confirmed | cancelled; confirmed -> cancelled; confirmed or partially_fulfilled
-> fulfilled (sales); confirmed or partially_received -> received (purchase). Anything else:
PT409 invalid_transition (a partially fulfilled or received order is closed short with
public.close_order). Confirming a sales order reserves its stock (PT409 insufficient_stock if
it cannot; expired and quarantined lots are not available); cancelling a confirmed one releases
it; fulfilled fulfils everything still open (private.fulfil_lines: sale movements FEFO among
usable lots, releasing the reservation); received receives everything still open
(private.receive_lines) into lots numbered and dated from lots: [{product_id, lot_number,
expiry_date?}] when given, else lot PO<number>-<line_no> without expiry, at the line''s
unit_price. For part of an order, see public.fulfil_order and public.receive_order. Sales need
staff, purchases manager (PT403 forbidden); an order outside the caller''s organizations is
PT404 not_found. Security definer because clients may not write
orders or stock directly; it checks membership and role itself.';

revoke all on function public.update_order_status(uuid, text, jsonb) from public, anon;

grant execute on function public.update_order_status(uuid, text, jsonb)
to authenticated, service_role;
