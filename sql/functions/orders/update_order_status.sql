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
  lot_info jsonb;
  lot_id uuid;
  cost numeric;
begin
  ord := private.order_for_change(update_order_status.order_id);
  if coalesce(update_order_status.status, '') not in (
    'draft', 'confirmed', 'fulfilled', 'received', 'cancelled'
  ) then
    raise sqlstate 'PT422' using
      message = 'unknown order status',
      detail = coalesce(update_order_status.status, 'null'),
      hint = 'validation_failed';
  end if;
  if not (
    (ord.status = 'draft' and update_order_status.status in ('confirmed', 'cancelled'))
    or (ord.status = 'confirmed' and update_order_status.status = 'cancelled')
    or (ord.status = 'confirmed' and ord.kind = 'sales' and update_order_status.status = 'fulfilled')
    or (ord.status = 'confirmed' and ord.kind = 'purchase' and update_order_status.status = 'received')
  ) then
    raise sqlstate 'PT409' using
      message = format('a %s order cannot go from %s to %s', ord.kind, ord.status,
        update_order_status.status),
      detail = format('%s -> %s', ord.status, update_order_status.status),
      hint = 'invalid_transition';
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
      select i.product_id, i.quantity from public.order_items as i
      where i.order_id = ord.id
      order by i.product_id
    loop
      perform
      from public.stock_levels as s
      where s.product_id = line.product_id and s.location_id = ord.location_id
      for update;
      perform private.set_reserved(line.product_id, ord.location_id, -line.quantity);
    end loop;
  elsif update_order_status.status = 'fulfilled' then
    for line in
      select i.id, i.product_id, i.quantity, p.unit_cost
      from public.order_items as i
      inner join public.products as p on p.id = i.product_id
      where i.order_id = ord.id
      order by i.product_id
    loop
      perform private.take_stock(
        ord.organization_id, line.product_id, ord.location_id, 'sale', line.quantity,
        reserved_release => line.quantity, unit_cost => line.unit_cost, order_id => ord.id
      );
      update public.order_items as i set unit_cost = line.unit_cost where i.id = line.id;
    end loop;
  elsif update_order_status.status = 'received' then
    for line in
      select i.id, i.product_id, i.quantity, i.unit_price, i.line_no
      from public.order_items as i
      where i.order_id = ord.id
      order by i.product_id
    loop
      select x into lot_info
      from jsonb_array_elements(coalesce(update_order_status.lots, '[]'::jsonb)) as x
      where x ->> 'product_id' = line.product_id::text
      limit 1;
      perform
      from public.stock_levels as s
      where s.product_id = line.product_id and s.location_id = ord.location_id
      for update;
      lot_id := private.ensure_lot(
        ord.organization_id, line.product_id, ord.location_id,
        coalesce(lot_info ->> 'lot_number', format('PO%s-%s', ord.number, line.line_no)),
        (lot_info ->> 'expiry_date')::date
      );
      cost := line.unit_price;
      perform private.apply_movement(
        ord.organization_id, line.product_id, ord.location_id, 'receipt', line.quantity,
        lot_id => lot_id, unit_cost => cost, order_id => ord.id
      );
      update public.order_items as i set unit_cost = cost where i.id = line.id;
    end loop;
  end if;

  update public.orders as o
  set
    status = update_order_status.status,
    confirmed_at = case
      when update_order_status.status = 'confirmed' then now() else o.confirmed_at
    end,
    completed_at = case
      when update_order_status.status in ('fulfilled', 'received') then now()
    end,
    cancelled_at = case when update_order_status.status = 'cancelled' then now() end
  where o.id = ord.id;
  return private.order_json(ord.id);
end
$$;

comment on function public.update_order_status(uuid, text, jsonb) is
'Moves an order to a new status, with its stock effects, in one transaction; returns it as JSON.

Legal: draft -> confirmed | cancelled; confirmed -> cancelled; confirmed -> fulfilled (sales) or
received (purchase). Anything else: PT409 invalid_transition. Confirming a sales order reserves
its stock (PT409 insufficient_stock if it cannot); cancelling a confirmed one releases it;
fulfilling writes sale movements consuming lots FEFO (earliest expiry first) and releases the
reservation; receiving writes receipt movements into lots, numbered and dated from
lots: [{product_id, lot_number, expiry_date?}] when given, else lot PO<number>-<line_no>
without expiry. Sales need staff, purchases manager (PT403 forbidden); an order outside the
caller''s organizations is PT404 not_found. Security definer because clients may not write
orders or stock directly; it checks membership and role itself.';

revoke all on function public.update_order_status(uuid, text, jsonb) from public, anon;

grant execute on function public.update_order_status(uuid, text, jsonb)
to authenticated, service_role;
