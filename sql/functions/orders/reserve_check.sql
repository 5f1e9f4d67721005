create or replace function private.reserve_check(location_id uuid, lines jsonb)
returns void
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  line record;
  level record;
  available numeric;
  short jsonb := '[]'::jsonb;
begin
  -- Lock every stock row in (product_id, location_id) order (so concurrent orders cannot
  -- deadlock), then refuse the whole order if any line lacks available stock.
  for line in
    select x.product_id, x.quantity, p.sku, p.name
    from jsonb_to_recordset(reserve_check.lines) as x (product_id uuid, quantity numeric)
    inner join public.products as p on p.id = x.product_id
    order by x.product_id
  loop
    select s.on_hand, s.reserved into level
    from public.stock_levels as s
    where s.product_id = line.product_id and s.location_id = reserve_check.location_id
    for update;
    -- Expired and quarantined lots are never available (private.unusable_quantity).
    available := coalesce(level.on_hand - level.reserved, 0)
      - private.unusable_quantity(line.product_id, reserve_check.location_id);
    if available < line.quantity then
      short := short || jsonb_build_object(
        'product_id', line.product_id,
        'sku', line.sku,
        'name', line.name,
        'requested', line.quantity,
        'available', greatest(available, 0)
      );
    end if;
  end loop;
  if jsonb_array_length(short) > 0 then
    raise sqlstate 'PT409' using
      message = 'insufficient stock for ' || (
        select string_agg(x ->> 'sku', ', ') from jsonb_array_elements(short) as x
      ),
      detail = jsonb_build_object('products', short)::text,
      hint = 'insufficient_stock';
  end if;
end
$$;

comment on function private.reserve_check(uuid, jsonb) is
'Before a sales order reserves stock: locks the stock rows of lines ([{product_id, quantity}])
at the location in product order, and raises PT409 insufficient_stock naming every short line
(sku, requested, available) when any is. Available = on_hand - reserved - the quantity in
unusable (expired or quarantined) lots. Security invoker: called by the security definer
order functions (create_order, update_order_status).';

revoke all on function private.reserve_check(uuid, jsonb) from public, anon, authenticated;
