create or replace function private.replenishment_incoming(organization_id uuid)
returns table (
  product_id uuid,
  location_id uuid,
  on_order numeric,
  draft numeric
)
language sql
stable
security invoker
rows 1000
set search_path = ''
as $$
  select
    i.product_id,
    o.location_id,
    coalesce(sum(i.quantity - i.done_quantity) filter (where o.status <> 'draft'), 0),
    coalesce(sum(i.quantity) filter (where o.status = 'draft'), 0)
  from public.orders as o
  inner join public.order_items as i on o.id = i.order_id
  where
    o.organization_id = replenishment_incoming.organization_id
    and o.kind = 'purchase'
    and o.status in ('draft', 'confirmed', 'partially_received')
  group by i.product_id, o.location_id
$$;

comment on function private.replenishment_incoming(uuid) is
'What open purchase orders of an organization bring, per product and destination location.

on_order: what confirmed and partially received orders still bring (quantity - done_quantity);
draft: the quantities of draft orders. Read by private.replenishment_lines and
reorder_suggestions. Not inlined (its SET clause), on purpose: its callers then plan with its
ROWS estimate (1000) and hash what it returns, where an inlined estimate (usually a handful of
open orders) led to nested loops over tens of thousands of draft lines. Security invoker: its
callers are definer functions that checked the caller''s organization.';

revoke all on function private.replenishment_incoming(uuid) from public, anon, authenticated;
