create or replace function private.settle_order(
  order_id uuid, done_status text, partial_status text
)
returns void
language sql
volatile
security invoker
set search_path = ''
as $$
  update public.orders as o
  set
    status = case when done.all_done then settle_order.done_status else settle_order.partial_status end,
    completed_at = case when done.all_done then now() end
  from (
    select bool_and(i.done_quantity >= i.quantity) as all_done
    from public.order_items as i
    where i.order_id = settle_order.order_id
  ) as done
  where o.id = settle_order.order_id
$$;

comment on function private.settle_order(uuid, text, text) is
'After lines of an order moved stock: done_status (fulfilled, received) when every line is
done, else partial_status (partially_fulfilled, partially_received), with completed_at.';

revoke all on function private.settle_order(uuid, text, text) from public, anon, authenticated;
