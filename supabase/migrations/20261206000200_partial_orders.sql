-- Partial fulfilment and receipt, backorders, closing short and returns (issue 12).
--
-- An order line now says how much of it has moved (done_quantity: fulfilled for a sales line,
-- received for a purchase line), how much of that came back (returned_quantity) and, once the
-- order is closed short, how much never will (short_quantity). A sales order keeps its
-- reservation for what is still to be fulfilled: reserved = quantity - done_quantity of the lines
-- of sales orders in confirmed or partially_fulfilled, per product and location.

alter table public.orders drop constraint orders_status_check;

alter table public.orders drop constraint orders_status_matches_kind;

alter table public.orders drop constraint orders_confirmed_at_check;

alter table public.orders
add constraint orders_status_check check (status in (
  'draft', 'confirmed', 'partially_fulfilled', 'fulfilled', 'partially_received', 'received',
  'cancelled'
)),
add constraint orders_status_matches_kind check (
  (status not in ('partially_fulfilled', 'fulfilled') or kind = 'sales')
  and (status not in ('partially_received', 'received') or kind = 'purchase')
),
add constraint orders_confirmed_at_check check (
  (status = 'draft' and confirmed_at is null)
  or (
    status in ('confirmed', 'partially_fulfilled', 'fulfilled', 'partially_received', 'received')
    and confirmed_at is not null
  )
  or status = 'cancelled'
);

alter table public.orders
add column closed_reason text check (char_length(closed_reason) between 1 and 500),
add constraint orders_closed_reason_status_check check (
  closed_reason is null or status in ('fulfilled', 'received')
);

comment on table public.orders is
'Sales orders (stock out) and purchase orders (stock in). Created and moved through their
states only by the order functions: draft -> confirmed -> (partially_fulfilled ->) fulfilled
(sales) or (partially_received ->) received (purchase); draft or confirmed -> cancelled; a
partially fulfilled or received order may be closed short (closed_reason).';
comment on column public.orders.closed_reason is
'Why the order was closed short (public.close_order): what was not fulfilled or received is
recorded per line in order_items.short_quantity. Null for orders completed in full.';

alter table public.order_items
add column done_quantity numeric(14, 3) not null default 0,
add column returned_quantity numeric(14, 3) not null default 0,
add column short_quantity numeric(14, 3),
add constraint order_items_done_quantity_check check (
  done_quantity >= 0 and done_quantity <> 'NaN'::numeric
),
add constraint order_items_returned_quantity_check check (
  returned_quantity >= 0
  and returned_quantity <> 'NaN'::numeric
  and returned_quantity <= done_quantity
),
add constraint order_items_short_quantity_check check (
  short_quantity >= 0 and short_quantity <> 'NaN'::numeric and short_quantity <= quantity
);

comment on column public.order_items.done_quantity is
'Quantity fulfilled (sales) or received (purchase) so far. A sales line reserves quantity -
done_quantity while its order is confirmed or partially_fulfilled; a purchase line may be
received beyond quantity up to the over_receipt_tolerance setting.';
comment on column public.order_items.returned_quantity is
'Of done_quantity, how much came back: returned by the customer into stock (sales) or sent back
to the supplier (purchase). Never more than done_quantity.';
comment on column public.order_items.short_quantity is
'Quantity never fulfilled or received because the order was closed short; null until then.';
comment on column public.order_items.unit_cost is
'Cost per unit of the stock that moved: for a sales line the weighted average cost its sale
movements took out, for a purchase line the average cost it was received at; null until then.';

-- Orders completed before this migration moved their whole quantity.
update public.order_items as i
set done_quantity = i.quantity
from public.orders as o
where o.id = i.order_id and o.status in ('fulfilled', 'received');
