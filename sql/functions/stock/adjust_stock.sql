create or replace function public.adjust_stock(
  product_id uuid,
  location_id uuid,
  quantity_delta numeric,
  reason text,
  lot_number text default null,
  expiry_date date default null,
  unit_cost numeric default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  delta numeric;
  taking numeric;
  level record;
  lot record;
  lot_id uuid;
  cost numeric;
begin
  org := private.stock_scope(adjust_stock.product_id, adjust_stock.location_id, 'staff');
  delta := private.check_number(
    adjust_stock.quantity_delta, 'quantity_delta',
    private.quantity_decimals(adjust_stock.product_id)
  );
  if delta = 0 then
    raise sqlstate 'PT422' using
      message = 'quantity_delta must be a non-zero number',
      detail = 'quantity_delta',
      hint = 'validation_failed';
  end if;
  if adjust_stock.unit_cost is not null then
    cost := private.check_number(adjust_stock.unit_cost, 'unit_cost', 4, 0);
    if delta < 0 then
      raise sqlstate 'PT422' using
        message = 'unit_cost applies to stock added: stock removed leaves at its own cost',
        detail = 'unit_cost',
        hint = 'validation_failed';
    end if;
  end if;
  if nullif(btrim(adjust_stock.reason), '') is null then
    raise sqlstate 'PT422' using
      message = 'an adjustment needs a reason',
      detail = 'reason',
      hint = 'validation_failed';
  end if;
  select s.on_hand, s.reserved into level
  from public.stock_levels as s
  where s.product_id = adjust_stock.product_id and s.location_id = adjust_stock.location_id
  for update;

  if delta > 0 then
    if adjust_stock.lot_number is not null then
      lot_id := private.ensure_lot(
        org, adjust_stock.product_id, adjust_stock.location_id, adjust_stock.lot_number,
        adjust_stock.expiry_date
      );
    end if;
    perform private.apply_movement(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment', delta,
      lot_id => lot_id, unit_cost => cost, reason => adjust_stock.reason
    );
  elsif adjust_stock.lot_number is not null then
    taking := -delta;
    select l.id, l.quantity, private.lot_usable(
        l.status, l.expiry_date, private.organization_today(org)
      ) as usable into lot
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
    -- Stock removed from an unusable lot was not available anyway; from a usable one it must
    -- not eat into what is reserved.
    if lot.quantity < taking
      or coalesce(level.on_hand - level.reserved, 0) < taking
      or (lot.usable and private.available_quantity(
        adjust_stock.product_id, adjust_stock.location_id
      ) < taking) then
      raise sqlstate 'PT409' using
        message = 'insufficient stock',
        detail = jsonb_build_object('products', jsonb_build_array(jsonb_build_object(
          'product_id', adjust_stock.product_id,
          'lot_number', adjust_stock.lot_number,
          'requested', taking,
          'available', least(lot.quantity, coalesce(level.on_hand - level.reserved, 0))
        )))::text,
        hint = 'insufficient_stock';
    end if;
    perform private.apply_movement(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment', delta,
      lot_id => lot.id, reason => adjust_stock.reason
    );
  else
    perform private.take_stock(
      org, adjust_stock.product_id, adjust_stock.location_id, 'adjustment', -delta,
      reason => adjust_stock.reason
    );
  end if;

  return (
    select to_jsonb(s)
    from public.stock_levels as s
    where s.product_id = adjust_stock.product_id and s.location_id = adjust_stock.location_id
  );
end
$$;

comment on function public.adjust_stock(uuid, uuid, numeric, text, text, date, numeric) is
'Records a stock adjustment (count correction, damage, found stock); returns the stock level.

quantity_delta > 0 adds stock, into lot lot_number (created with expiry_date) when given, at
unit_cost (default: the current weighted average cost); quantity_delta < 0 removes it from that
lot, or FEFO across usable lots then untracked stock, at its own cost. It cannot take reserved
stock: PT409 insufficient_stock. quantity_delta: finite, non-zero, no more decimals than the
product''s unit takes; unit_cost: finite, >= 0, 4 decimals; reason required; an expired lot or
an existing lot number with another expiry date is refused (PT422 validation_failed naming the
field, PT409 lot_expiry_mismatch); an inactive location takes no movement (PT409
location_inactive). Needs staff; a product or location outside the caller''s organizations is
PT404 not_found. Security definer because clients may not write the ledger; it checks
organization and role.';

revoke all on function public.adjust_stock(uuid, uuid, numeric, text, text, date, numeric)
from public, anon;

grant execute on function public.adjust_stock(uuid, uuid, numeric, text, text, date, numeric)
to authenticated, service_role;
