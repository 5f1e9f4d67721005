create or replace function private.replenishment_quantity(
  available double precision,
  reorder_point double precision,
  order_up_to double precision,
  minimum_order_quantity numeric,
  pack_size numeric
)
returns numeric
language sql
immutable
parallel safe
security invoker
set search_path = ''
as $$
  select ceil(
    greatest(
      round((replenishment_quantity.order_up_to - replenishment_quantity.available)::numeric, 3),
      -- Always above the point afterwards, or the same need would be proposed again.
      floor(
        (replenishment_quantity.reorder_point - replenishment_quantity.available)::numeric * 1000
      ) / 1000 + 0.001,
      coalesce(replenishment_quantity.minimum_order_quantity, 0),
      0.001
    ) / coalesce(replenishment_quantity.pack_size, 1)
  ) * coalesce(replenishment_quantity.pack_size, 1)
$$;

comment on function private.replenishment_quantity(
  double precision, double precision, double precision, numeric, numeric
) is
'How much to order to bring available up to order_up_to, as a supplier takes it.

order_up_to - available (to 3 decimals), at least enough to lift available above reorder_point
(else the same need would be proposed again: an order-up-to level equal to the point, a product
without demand), at least the minimum_order_quantity (null = none), rounded up to a whole number of pack_size (null = 1: whole units). Shared by
reorder_suggestions and create_replenishment_orders so both propose the same quantities.';

revoke all on function private.replenishment_quantity(
  double precision, double precision, double precision, numeric, numeric
) from public, anon, authenticated;
