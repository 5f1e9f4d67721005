create or replace function public.update_draft_order(
  order_id uuid,
  location_id uuid,
  items jsonb,
  supplier_id uuid default null,
  customer_name text default null,
  notes text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  ord public.orders;
  supplier_currency text;
begin
  ord := private.order_for_change(update_draft_order.order_id);
  if ord.status <> 'draft' then
    raise sqlstate 'PT409' using
      message = format('only a draft order can be edited; order %s is %s', ord.number, ord.status),
      detail = format('%s -> draft edit', ord.status),
      hint = 'invalid_transition';
  end if;
  if update_draft_order.supplier_id is not null and ord.kind <> 'purchase' then
    raise sqlstate 'PT422' using
      message = 'only a purchase order has a supplier',
      detail = update_draft_order.supplier_id::text,
      hint = 'validation_failed';
  end if;
  if update_draft_order.customer_name is not null and ord.kind <> 'sales' then
    raise sqlstate 'PT422' using
      message = 'only a sales order has a customer name',
      hint = 'validation_failed';
  end if;

  supplier_currency := private.order_place(
    ord.organization_id, update_draft_order.location_id, update_draft_order.supplier_id
  );

  -- Drafts reserve nothing: replacing the lines changes no stock. private.order_lines raises on
  -- bad items, which rolls back the delete too: nothing partial is written.
  delete from public.order_items as i where i.order_id = ord.id;
  insert into public.order_items (
    organization_id, order_id, product_id, line_no, quantity, unit_price
  )
  select ord.organization_id, ord.id, x.product_id, x.line_no, x.quantity, x.unit_price
  from private.order_lines(ord.organization_id, ord.kind, update_draft_order.items) as x;

  update public.orders as o
  set
    location_id = update_draft_order.location_id,
    supplier_id = update_draft_order.supplier_id,
    customer_name = update_draft_order.customer_name,
    notes = update_draft_order.notes,
    currency = coalesce(
      supplier_currency,
      (
        select st.value ->> 'currency' from public.settings as st
        where st.organization_id = ord.organization_id
      ),
      'USD'
    )
  where o.id = ord.id;
  return private.order_json(ord.id);
end
$$;

comment on function public.update_draft_order(uuid, uuid, jsonb, uuid, text, text) is
'Replaces a draft order''s lines and details in one transaction; returns it as JSON.

The new content is complete, as in PUT: location_id, items [{product_id, quantity,
unit_price?}] (validated as in create_order, see private.order_lines), supplier_id (purchases),
customer_name (sales) and notes; an omitted field is cleared. Currency follows the supplier,
else the settings currency, else USD. Drafts reserve nothing, so no stock changes. Only a draft
may be edited (else PT409 invalid_transition); sales need staff, purchases manager (PT403
forbidden); an order, location, supplier or product outside the order''s organization is PT404
not_found; bad content is PT422 validation_failed. Security definer because clients may not
write orders directly; it checks membership and role itself.';

revoke all on function public.update_draft_order(uuid, uuid, jsonb, uuid, text, text)
from public, anon;

grant execute on function public.update_draft_order(uuid, uuid, jsonb, uuid, text, text)
to authenticated, service_role;
