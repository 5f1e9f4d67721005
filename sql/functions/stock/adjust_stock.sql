create or replace function public.adjust_stock(
  product_id uuid,
  location_id uuid,
  quantity_delta numeric,
  reason text,
  lot_number text default null,
  expiry_date date default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  level record;
  lot record;
  lot_id uuid;
  cost numeric;
begin
  org := private.stock_scope(adjust_stock.product_id, adjust_stock.location_id, 'staff');
  if adjust_stock.quantity_delta is null or adjust_stock.quantity_delta = 0 then
    raise sqlstate 'PT422' using
      message = 'quantity_delta must be a non-zero number',
      hint = 'validation_failed';
  end if;
  if nullif(btrim(adjust_stock.reason), '') is null then
    raise sqlstate 'PT422' using
      message = 'an adjustment needs a reason',
      hint = 'validation_failed';
  end if;
  select p.unit_cost into cost from public.products as p where p.id = adjust_stock.product_id;
  select s.on_hand, s.reserved into level
  from public.stock_levels as s
  where s.product_id = adjust_stock.product_id and s.location_id = adjust_stock.location_id
  for update;

  if adjust_stock.quantity_delta > 0 then
    if adjust_stock.lot_number is not null then
      lot_id := private.ensure_lot(
        org, adjust_stock.product_id, adjust_stock.location_id, adjust_stock.lot_number,
        adjust_stock.expiry_date
      );
    end if;
    perform private.apply_movement(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment',
      adjust_stock.quantity_delta,
      lot_id => lot_id, unit_cost => cost, reason => adjust_stock.reason
    );
  elsif adjust_stock.lot_number is not null then
    select l.id, l.quantity into lot
    from public.lots as l
    where
      l.product_id = adjust_stock.product_id
      and l.location_id = adjust_stock.location_id
      and l.lot_number = adjust_stock.lot_number
    for update;
    if not found then
      raise sqlstate 'PT404' using
        message = 'lot not found',
        detail = adjust_stock.lot_number,
        hint = 'not_found';
    end if;
    if lot.quantity < -adjust_stock.quantity_delta
      or coalesce(level.on_hand - level.reserved, 0) < -adjust_stock.quantity_delta then
      raise sqlstate 'PT409' using
        message = 'insufficient stock',
        detail = jsonb_build_object('products', jsonb_build_array(jsonb_build_object(
          'product_id', adjust_stock.product_id,
          'lot_number', adjust_stock.lot_number,
          'requested', -adjust_stock.quantity_delta,
          'available', least(lot.quantity, coalesce(level.on_hand - level.reserved, 0))
        )))::text,
        hint = 'insufficient_stock';
    end if;
    perform private.apply_movement(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment',
      adjust_stock.quantity_delta,
      lot_id => lot.id, unit_cost => cost, reason => adjust_stock.reason
    );
  else
    perform private.take_stock(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment',
      -adjust_stock.quantity_delta, unit_cost => cost, reason => adjust_stock.reason
    );
  end if;

  return (
    select to_jsonb(s)
    from public.stock_levels as s
    where s.product_id = adjust_stock.product_id and s.location_id = adjust_stock.location_id
  );
end
$$;

comment on function public.adjust_stock(uuid, uuid, numeric, text, text, date) is
'Records a stock adjustment (count correction, damage, found stock); returns the stock level.

quantity_delta > 0 adds stock, into lot lot_number (created with expiry_date) when given;
quantity_delta < 0 removes it from that lot, or FEFO across lots then untracked stock. It cannot
take reserved stock: PT409 insufficient_stock. reason is required (PT422 validation_failed).
Needs staff; a product or location outside the caller''s organizations is PT404 not_found.
Security definer because clients may not write the ledger; it checks organization and role.';

revoke all on function public.adjust_stock(uuid, uuid, numeric, text, text, date)
from public, anon;

grant execute on function public.adjust_stock(uuid, uuid, numeric, text, text, date)
to authenticated, service_role;
