create or replace function private.take_stock(
  organization_id uuid,
  product_id uuid,
  location_id uuid,
  kind text,
  quantity numeric,
  reserved_release numeric default 0,
  unit_cost numeric default null,
  order_id uuid default null,
  reason text default null,
  transfer_id uuid default null
)
returns table (lot_number text, expiry_date date, taken numeric, movement_id bigint)
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  level record;
  lot record;
  usable numeric;
  remaining numeric := take_stock.quantity;
  release_left numeric := take_stock.reserved_release;
  piece numeric;
  released numeric;
begin
  select s.on_hand, s.reserved
  into level
  from public.stock_levels as s
  where s.product_id = take_stock.product_id and s.location_id = take_stock.location_id
  for update;
  usable := coalesce(level.on_hand - level.reserved, 0) + take_stock.reserved_release
    - private.unusable_quantity(take_stock.product_id, take_stock.location_id);
  if level is null or usable < take_stock.quantity then
    raise sqlstate 'PT409' using
      message = 'insufficient stock',
      detail = jsonb_build_object(
        'products', jsonb_build_array(jsonb_build_object(
          'product_id', take_stock.product_id,
          'location_id', take_stock.location_id,
          'requested', take_stock.quantity,
          'available', greatest(usable, 0)
        ))
      )::text,
      hint = 'insufficient_stock';
  end if;
  -- FEFO among usable lots: earliest expiry first, lots without expiry after dated ones,
  -- untracked stock last. Expired and quarantined lots are never picked.
  for lot in
    select l.id, l.lot_number, l.expiry_date, l.quantity
    from public.lots as l
    where
      l.product_id = take_stock.product_id
      and l.location_id = take_stock.location_id
      and l.quantity > 0
      and private.lot_usable(l.status, l.expiry_date, private.organization_today(l.organization_id))
    order by l.expiry_date asc nulls last, l.received_at asc, l.id asc
    for update
  loop
    exit when remaining <= 0;
    piece := least(lot.quantity, remaining);
    released := least(release_left, piece);
    movement_id := private.apply_movement(
      take_stock.organization_id, take_stock.product_id, take_stock.location_id,
      take_stock.kind, -piece, lot.id, null, take_stock.order_id,
      take_stock.reason, take_stock.transfer_id, -released
    );
    remaining := remaining - piece;
    release_left := release_left - released;
    lot_number := lot.lot_number;
    expiry_date := lot.expiry_date;
    taken := piece;
    return next;
  end loop;
  if remaining > 0 then
    movement_id := private.apply_movement(
      take_stock.organization_id, take_stock.product_id, take_stock.location_id,
      take_stock.kind, -remaining, null, null, take_stock.order_id,
      take_stock.reason, take_stock.transfer_id, -release_left
    );
    lot_number := null;
    expiry_date := null;
    taken := remaining;
    return next;
  end if;
end
$$;

comment on function private.take_stock(
  uuid, uuid, uuid, text, numeric, numeric, numeric, uuid, text, uuid
) is
'Takes quantity (> 0) out of one product''s stock at one location, FEFO, as ledger rows.

Locks the stock_levels row, checks that on_hand - reserved + reserved_release - unusable lots
covers the quantity (else PT409 insufficient_stock), then consumes usable lots by earliest
expiry date (lots without expiry after dated ones; expired and quarantined lots never) and
finally untracked stock, writing one movement of the given kind per piece and releasing up to
reserved_release of the reservation. The cost of each piece is computed by apply_movement
(unit_cost is ignored and kept for callers). Returns the pieces taken: lot number and expiry
(null for untracked stock), quantity and movement id. Security invoker: only the security
definer stock and order functions call it.';

revoke all on function private.take_stock(
  uuid, uuid, uuid, text, numeric, numeric, numeric, uuid, text, uuid
) from public, anon, authenticated;
