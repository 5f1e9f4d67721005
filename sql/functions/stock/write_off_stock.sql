create or replace function public.write_off_stock(
  product_id uuid,
  location_id uuid,
  quantity numeric,
  reason text,
  lot_number text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  amount numeric;
  level record;
  lot record;
begin
  org := private.stock_scope(write_off_stock.product_id, write_off_stock.location_id, 'manager');
  amount := private.product_quantity(
    write_off_stock.product_id, write_off_stock.quantity, 'quantity'
  );
  if coalesce(write_off_stock.reason, '') not in ('damaged', 'expired', 'lost') then
    raise sqlstate 'PT422' using
      message = 'reason must be damaged, expired or lost',
      detail = 'reason',
      hint = 'validation_failed';
  end if;
  select s.on_hand, s.reserved into level
  from public.stock_levels as s
  where s.product_id = write_off_stock.product_id and s.location_id = write_off_stock.location_id
  for update;

  if write_off_stock.lot_number is null then
    -- FEFO among usable lots, then untracked stock; never reserved stock.
    perform private.take_stock(
      org, write_off_stock.product_id, write_off_stock.location_id, 'write_off', amount,
      reason => write_off_stock.reason
    );
  else
    select l.id, l.quantity, private.lot_usable(
        l.status, l.expiry_date, private.organization_today(org)
      ) as usable into lot
    from public.lots as l
    where
      l.product_id = write_off_stock.product_id
      and l.location_id = write_off_stock.location_id
      and l.lot_number = write_off_stock.lot_number
    for update;
    if not found then
      raise sqlstate 'PT404' using
        message = 'lot not found',
        detail = write_off_stock.lot_number,
        hint = 'not_found';
    end if;
    -- A named lot may be expired or quarantined (that is why it is written off), but what
    -- confirmed sales orders hold stays: usable stock only down to the reservation.
    if lot.quantity < amount
      or coalesce(level.on_hand - level.reserved, 0) < amount
      or (
        lot.usable
        and private.available_quantity(write_off_stock.product_id, write_off_stock.location_id)
        < amount
      ) then
      raise sqlstate 'PT409' using
        message = 'insufficient stock',
        detail = jsonb_build_object('products', jsonb_build_array(jsonb_build_object(
          'product_id', write_off_stock.product_id,
          'lot_number', write_off_stock.lot_number,
          'requested', amount,
          'available', least(lot.quantity, coalesce(level.on_hand - level.reserved, 0))
        )))::text,
        hint = 'insufficient_stock';
    end if;
    perform private.apply_movement(
      org, write_off_stock.product_id, write_off_stock.location_id, 'write_off', -amount,
      lot_id => lot.id, reason => write_off_stock.reason
    );
  end if;

  return (
    select to_jsonb(s)
    from public.stock_levels as s
    where
      s.product_id = write_off_stock.product_id and s.location_id = write_off_stock.location_id
  );
end
$$;

comment on function public.write_off_stock(uuid, uuid, numeric, text, text) is
'Writes stock off (damaged, expired or lost) as write_off movements; returns the stock level.

quantity > 0 with no more decimals than the product''s unit takes; reason damaged | expired |
lost (else PT422 validation_failed naming the field). From lot lot_number when given (even an
expired or quarantined lot), else FEFO among usable lots then untracked stock. Reserved stock is
never written off: PT409 insufficient_stock. The cost taken out is computed by the ledger
(private.apply_movement). Needs manager; PT404 not_found outside the caller''s organizations or
for an unknown lot; an inactive location refuses it. Security definer because it writes the
ledger, which clients may not write; it checks organization and role itself.';

revoke all on function public.write_off_stock(uuid, uuid, numeric, text, text) from public, anon;

grant execute on function public.write_off_stock(uuid, uuid, numeric, text, text)
to authenticated, service_role;
