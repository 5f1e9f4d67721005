create or replace function public.close_order(order_id uuid, reason text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
  line record;
  final text;
begin
  ord := private.order_for_change(close_order.order_id);
  if nullif(btrim(close_order.reason), '') is null or char_length(close_order.reason) > 500 then
    raise sqlstate 'PT422' using
      message = 'closing an order short needs a reason (1 to 500 characters)',
      detail = 'reason',
      hint = 'validation_failed';
  end if;
  if ord.status not in ('partially_fulfilled', 'partially_received') then
    raise sqlstate 'PT409' using
      message = format(
        'only a partially %s order can be closed short; order %s is %s%s',
        case when ord.kind = 'sales' then 'fulfilled' else 'received' end,
        ord.number, ord.status,
        case when ord.status = 'confirmed' then ' (cancel it instead)' else '' end
      ),
      detail = format('%s -> closed', ord.status),
      hint = 'invalid_transition';
  end if;
  final := case when ord.kind = 'sales' then 'fulfilled' else 'received' end;

  -- A sales order gives back what it still had reserved, stock rows in product order.
  if ord.kind = 'sales' then
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

  update public.order_items as i
  set short_quantity = greatest(i.quantity - i.done_quantity, 0)
  where i.order_id = ord.id;

  update public.orders as o
  set status = final, completed_at = now(), closed_reason = close_order.reason
  where o.id = ord.id;
  return private.order_json(ord.id);
end
$$;

comment on function public.close_order(uuid, text) is
'Closes a partially fulfilled sales order or partially received purchase order short; returns
the order as JSON.

The order becomes fulfilled (sales) or received (purchase) with closed_reason = reason (1 to 500
characters, else PT422 validation_failed); each line records what never moved in
order_items.short_quantity, and a sales order releases the reservation it still held. Only a
partially_fulfilled or partially_received order can be closed (a confirmed one is cancelled
instead): else PT409 invalid_transition. Sales need staff, purchases manager (PT403); PT404
not_found outside the caller''s organizations. Security definer because it writes orders and
the reservation in stock_levels, which clients may not write; it checks membership and role
itself (private.order_for_change).';

revoke all on function public.close_order(uuid, text) from public, anon;

grant execute on function public.close_order(uuid, text) to authenticated, service_role;
