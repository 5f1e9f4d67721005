create or replace function public.fulfil_order(order_id uuid, lines jsonb)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
begin
  ord := private.order_for_change(fulfil_order.order_id);
  perform private.fulfil_lines(ord.id, fulfil_order.lines);
  return private.order_json(ord.id);
end
$$;

comment on function public.fulfil_order(uuid, jsonb) is
'Fulfils part (or the rest) of a confirmed or partially fulfilled sales order, line by line and
lot by lot; returns the order as JSON.

lines: [{product_id, quantity, lot_number?}]: a product of the order, a quantity > 0 (no more
decimals than its unit takes) and optionally the lot to take it from (usable: not expired or
quarantined, else PT409 lot_unusable); without a lot, FEFO among usable lots then untracked
stock. Each line takes its quantity out of the order''s reservation as sale movements, costed by
the ledger; order_items.done_quantity grows and unit_cost becomes the average cost taken out.
The order is fulfilled when every line is done, else partially_fulfilled: the rest stays
reserved as a backorder until fulfilled or closed short (public.close_order). Errors: PT409
over_fulfilment (more than a line still needs), insufficient_stock, invalid_transition (other
statuses, purchase orders); PT422 validation_failed naming the field; PT404 not_found; PT403
below staff. Security definer because it writes the ledger, stock and orders, which clients
may not write; it checks membership and role itself (private.order_for_change).';

revoke all on function public.fulfil_order(uuid, jsonb) from public, anon;

grant execute on function public.fulfil_order(uuid, jsonb) to authenticated, service_role;
