create or replace function public.receive_order(order_id uuid, lines jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
begin
  ord := private.order_for_change(receive_order.order_id);
  perform private.receive_lines(ord.id, receive_order.lines);
  return private.order_json(ord.id);
end
$$;

comment on function public.receive_order(uuid, jsonb) is
'Receives part (or the rest) of a confirmed or partially received purchase order, line by line
and lot by lot; returns the order as JSON.

lines: [{product_id, quantity, lot_number?, expiry_date?, unit_cost?}]: a product of the order,
a quantity > 0 (no more decimals than its unit takes), the lot it goes into (default
PO<number>-<line_no>; an expired lot or a known lot number with another expiry is refused) and
the cost per unit (at most 4 decimals; default the line''s unit_price), which moves the weighted
average and opens a FIFO layer. order_items.done_quantity grows; a line may be received up to
quantity * (1 + over_receipt_tolerance, an organization setting, default 0), else PT409
over_receipt. The order is received when every line is done, else partially_received (the rest
is a backorder until received or closed short with public.close_order). Other errors: PT409
invalid_transition; PT422 validation_failed naming the field; PT404 not_found; PT403 below
manager. Security definer because it writes the ledger, stock and orders, which clients may not
write; it checks membership and role itself (private.order_for_change).';

revoke all on function public.receive_order(uuid, jsonb) from public, anon;

grant execute on function public.receive_order(uuid, jsonb) to authenticated, service_role;
