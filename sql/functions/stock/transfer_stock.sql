create or replace function public.transfer_stock(
  product_id uuid,
  from_location_id uuid,
  to_location_id uuid,
  quantity numeric
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  qty numeric;
  piece record;
  lot_id uuid;
  new_transfer_id uuid := gen_random_uuid();
begin
  org := private.stock_scope(
    transfer_stock.product_id, transfer_stock.from_location_id, 'staff'
  );
  perform private.stock_scope(transfer_stock.product_id, transfer_stock.to_location_id, 'staff');
  if transfer_stock.from_location_id = transfer_stock.to_location_id then
    raise sqlstate 'PT422' using
      message = 'a transfer needs two different locations',
      detail = 'to_location_id',
      hint = 'validation_failed';
  end if;
  qty := private.product_quantity(transfer_stock.product_id, transfer_stock.quantity, 'quantity');
  -- Lock both stock rows in (product_id, location_id) order before moving anything.
  perform
  from public.stock_levels as s
  where
    s.product_id = transfer_stock.product_id
    and s.location_id in (transfer_stock.from_location_id, transfer_stock.to_location_id)
  order by s.location_id
  for update;
  for piece in
    select t.lot_number, t.expiry_date, t.taken, t.movement_id
    from private.take_stock(
      org, transfer_stock.product_id, transfer_stock.from_location_id, 'transfer_out',
      qty, transfer_id => new_transfer_id
    ) as t
  loop
    lot_id := null;
    if piece.lot_number is not null then
      lot_id := private.ensure_lot(
        org, transfer_stock.product_id, transfer_stock.to_location_id, piece.lot_number,
        piece.expiry_date
      );
    end if;
    perform private.apply_movement(
      org, transfer_stock.product_id, transfer_stock.to_location_id, 'transfer_in', piece.taken,
      lot_id => lot_id, transfer_id => new_transfer_id, cost_source => piece.movement_id
    );
  end loop;
  return jsonb_build_object(
    'transfer_id', new_transfer_id,
    'product_id', transfer_stock.product_id,
    'from_location_id', transfer_stock.from_location_id,
    'to_location_id', transfer_stock.to_location_id,
    'quantity', qty
  );
end
$$;

comment on function public.transfer_stock(uuid, uuid, uuid, numeric) is
'Moves stock of one product between two locations of its organization, atomically.

Writes transfer_out rows (FEFO among usable lots; lots keep their number and expiry at the
destination) and matching transfer_in rows sharing one transfer_id, each carrying exactly the
cost its transfer_out took (the FIFO layers move with their dates); returns {transfer_id, product_id,
from_location_id, to_location_id, quantity}. Reserved stock cannot move: PT409
insufficient_stock. Needs staff; PT404 not_found outside the caller''s organizations; PT422
validation_failed for the same location, or a quantity that is not a positive finite number
with the product''s decimals; PT409 location_inactive. Security definer because
clients may not write the ledger; it checks organization and role itself.';

revoke all on function public.transfer_stock(uuid, uuid, uuid, numeric) from public, anon;

grant execute on function public.transfer_stock(uuid, uuid, uuid, numeric)
to authenticated, service_role;
