create or replace function public.record_stock_count(
  count_id uuid,
  product_id uuid,
  counted numeric,
  lot_number text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  cnt public.stock_counts;
  counted_qty numeric;
  found_lot uuid;
  seen numeric;
  last_id bigint;
  line public.stock_count_lines;
begin
  cnt := private.stock_count_for_change(record_stock_count.count_id, 'staff');
  if not exists (
    select from public.products as p
    where p.id = record_stock_count.product_id and p.organization_id = cnt.organization_id
  ) then
    raise sqlstate 'PT404' using
      message = 'product not found',
      detail = coalesce(record_stock_count.product_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not exists (
    select from public.locations as l
    where l.id = cnt.location_id and l.active
  ) then
    raise sqlstate 'PT409' using
      message = 'location is inactive: it takes no stock movements',
      detail = cnt.location_id::text,
      hint = 'location_inactive';
  end if;
  counted_qty := private.check_number(
    record_stock_count.counted, 'counted',
    private.quantity_decimals(record_stock_count.product_id), 0
  );

  -- The snapshot: lock the stock row (waiting for a movement in flight), then read what the
  -- ledger holds and its newest row, so a movement after this point is seen when posting.
  select s.on_hand into seen
  from public.stock_levels as s
  where s.product_id = record_stock_count.product_id and s.location_id = cnt.location_id
  for share;
  if record_stock_count.lot_number is not null then
    select l.id, l.quantity into found_lot, seen
    from public.lots as l
    where
      l.product_id = record_stock_count.product_id
      and l.location_id = cnt.location_id
      and l.lot_number = record_stock_count.lot_number
    for share;
    if not found then
      raise sqlstate 'PT404' using
        message = 'lot not found at this location',
        detail = record_stock_count.lot_number,
        hint = 'not_found';
    end if;
  end if;
  if exists (
    select from public.stock_count_lines as x
    where
      x.count_id = cnt.id
      and x.product_id = record_stock_count.product_id
      and (x.lot_id is null) <> (found_lot is null)
  ) then
    raise sqlstate 'PT409' using
      message = 'a product is counted either as a whole or lot by lot in one count',
      detail = record_stock_count.product_id::text,
      hint = 'count_line_conflict';
  end if;
  select max(m.id) into last_id
  from public.stock_movements as m
  where m.product_id = record_stock_count.product_id and m.location_id = cnt.location_id;

  insert into public.stock_count_lines as x (
    organization_id, count_id, location_id, product_id, lot_id, counted, on_hand_at_count,
    last_movement_id
  )
  values (
    cnt.organization_id, cnt.id, cnt.location_id, record_stock_count.product_id,
    found_lot, counted_qty, coalesce(seen, 0), last_id
  )
  on conflict on constraint stock_count_lines_product_lot_key do update
  set
    counted = excluded.counted,
    on_hand_at_count = excluded.on_hand_at_count,
    last_movement_id = excluded.last_movement_id,
    counted_by = auth.uid(),
    counted_at = now()
  returning x.* into line;
  return to_jsonb(line) - 'organization_id' || jsonb_build_object(
    'lot_number', record_stock_count.lot_number
  );
end
$$;

comment on function public.record_stock_count(uuid, uuid, numeric, text) is
'Records what was counted of a product (or of its lot lot_number) in an open stock count;
returns the line.

counted is finite, >= 0, with no more decimals than the product''s unit takes (PT422
validation_failed naming counted). The line keeps a snapshot: the quantity the ledger held
(the lot''s, else the product''s on_hand at the count''s location) and the newest movement
there; recording the same product (and lot) again replaces the line and its snapshot. A product
is counted as a whole or lot by lot within one count, not both (PT409 count_line_conflict); the
lot must exist at the location (PT404 not_found). Needs staff; PT404 not_found for a count or
product outside the caller''s organizations; PT409 count_closed once posted or cancelled, PT409
location_inactive when the location was deactivated. Security definer because clients may not
write counts directly; it checks membership and role itself.';

revoke all on function public.record_stock_count(uuid, uuid, numeric, text) from public, anon;

grant execute on function public.record_stock_count(uuid, uuid, numeric, text)
to authenticated, service_role;
