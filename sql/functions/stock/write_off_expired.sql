create or replace function public.write_off_expired(
  location_id uuid default null,
  organization_id uuid default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  today date;
  lot record;
  level record;
  piece numeric;
  written jsonb := '[]'::jsonb;
  held jsonb := '[]'::jsonb;
begin
  perform private.require_user();
  if write_off_expired.location_id is not null then
    select l.organization_id into org
    from public.locations as l
    where l.id = write_off_expired.location_id;
    if org is null or not private.is_member(org)
      or org is distinct from coalesce(write_off_expired.organization_id, org) then
      raise sqlstate 'PT404' using
        message = 'location not found',
        detail = write_off_expired.location_id::text,
        hint = 'not_found';
    end if;
  else
    org := private.active_organization(write_off_expired.organization_id);
  end if;
  if not private.has_role(org, 'manager') then
    raise sqlstate 'PT403' using
      message = 'your role may not write stock off',
      detail = org::text,
      hint = 'forbidden';
  end if;
  today := private.organization_today(org);

  -- Every stock row the run touches is locked first, in (product_id, location_id) order, as
  -- every stock function does: apply_movement then locks the product's cost row, and taking a
  -- second location's row after that would deadlock with a movement there.
  perform
  from public.stock_levels as s
  where (s.product_id, s.location_id) in (
    select l.product_id, l.location_id
    from public.lots as l
    inner join public.locations as loc on l.location_id = loc.id
    where
      l.organization_id = org
      and (write_off_expired.location_id is null or l.location_id = write_off_expired.location_id)
      and (loc.active or write_off_expired.location_id is not null)
      and l.quantity > 0
      and (l.status = 'expired' or l.expiry_date < today)
  )
  order by s.product_id, s.location_id
  for update;

  -- Expired lots with stock (by date, or marked expired by the scan), each lot after its stock
  -- row. Across the organization, inactive locations (which refuse every movement) are left
  -- alone.
  for lot in
    select l.id, l.product_id, l.location_id, l.lot_number, l.expiry_date
    from public.lots as l
    inner join public.locations as loc on l.location_id = loc.id
    where
      l.organization_id = org
      and (write_off_expired.location_id is null or l.location_id = write_off_expired.location_id)
      and (loc.active or write_off_expired.location_id is not null)
      and l.quantity > 0
      and (l.status = 'expired' or l.expiry_date < today)
    order by l.product_id, l.location_id, l.expiry_date, l.id
  loop
    select s.on_hand, s.reserved into level
    from public.stock_levels as s
    where s.product_id = lot.product_id and s.location_id = lot.location_id
    for update;
    select l.quantity into piece from public.lots as l where l.id = lot.id for update;
    -- What confirmed sales orders reserve stays (their lines cannot ship it, but the
    -- reservation is theirs to close): write off at most on_hand - reserved.
    if least(piece, level.on_hand - level.reserved) < piece then
      held := held || jsonb_build_object(
        'product_id', lot.product_id,
        'location_id', lot.location_id,
        'lot_number', lot.lot_number,
        'expiry_date', lot.expiry_date,
        'quantity', piece - greatest(least(piece, level.on_hand - level.reserved), 0)
      );
      piece := greatest(least(piece, level.on_hand - level.reserved), 0);
    end if;
    if piece > 0 then
      perform private.apply_movement(
        org, lot.product_id, lot.location_id, 'write_off', -piece,
        lot_id => lot.id, reason => 'expired'
      );
      written := written || jsonb_build_object(
        'product_id', lot.product_id,
        'location_id', lot.location_id,
        'lot_number', lot.lot_number,
        'expiry_date', lot.expiry_date,
        'quantity', piece
      );
    end if;
  end loop;

  return jsonb_build_object(
    'organization_id', org,
    'location_id', write_off_expired.location_id,
    'written_off', written,
    'quantity', (select coalesce(sum((x ->> 'quantity')::numeric), 0)
      from jsonb_array_elements(written) as x),
    'held_for_orders', held
  );
end
$$;

comment on function public.write_off_expired(uuid, uuid) is
'Writes off all expired stock of a location, or of the organization: one call.

Every lot with stock that is past its expiry date (by the organization''s date,
private.organization_today) or marked expired, at location_id (any of
the organization''s active locations when null; organization_id defaults to the caller''s
active organization), is written off from the lot itself as a write_off movement with reason
expired, costed by the ledger. Stock that confirmed sales orders still reserve is kept (listed
in held_for_orders) until they are cancelled or closed. Returns {organization_id, location_id,
written_off: [{product_id, location_id, lot_number, expiry_date, quantity}], quantity,
held_for_orders}. Needs manager (PT403); a location outside the caller''s organizations is
PT404 not_found. Security definer because it writes the ledger, which clients may not write; it
checks organization and role itself.';

revoke all on function public.write_off_expired(uuid, uuid) from public, anon;

grant execute on function public.write_off_expired(uuid, uuid) to authenticated, service_role;
