create or replace function public.open_stock_count(location_id uuid, note text default null)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  place record;
  new_id uuid;
begin
  perform private.require_user();
  select l.organization_id, l.active into place
  from public.locations as l
  where l.id = open_stock_count.location_id;
  if place.organization_id is null or not private.is_member(place.organization_id) then
    raise sqlstate 'PT404' using
      message = 'location not found',
      detail = coalesce(open_stock_count.location_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not private.has_role(place.organization_id, 'staff') then
    raise sqlstate 'PT403' using
      message = 'your role may not count stock',
      detail = place.organization_id::text,
      hint = 'forbidden';
  end if;
  if not place.active then
    raise sqlstate 'PT409' using
      message = 'location is inactive: it takes no stock movements',
      detail = open_stock_count.location_id::text,
      hint = 'location_inactive';
  end if;
  if char_length(open_stock_count.note) > 2000 then
    raise sqlstate 'PT422' using
      message = 'note may have at most 2000 characters',
      detail = 'note',
      hint = 'validation_failed';
  end if;
  insert into public.stock_counts as c (organization_id, location_id, note)
  values (place.organization_id, open_stock_count.location_id, open_stock_count.note)
  returning c.id into new_id;
  return private.stock_count_json(new_id);
end
$$;

comment on function public.open_stock_count(uuid, text) is
'Opens a stock count at a location; returns it as JSON (status open, no lines).

Lines are recorded with record_stock_count and written to the ledger by post_stock_count.
Several counts may be open at one location (e.g. one per aisle): posting detects stock that
moved after it was counted, whichever count moved it. Needs staff (PT403 forbidden); a location
outside the caller''s organizations is PT404 not_found; an inactive location PT409
location_inactive; a note over 2000 characters PT422 validation_failed. Security definer
because clients may not write counts directly; it checks membership and role itself.';

revoke all on function public.open_stock_count(uuid, text) from public, anon;

grant execute on function public.open_stock_count(uuid, text) to authenticated, service_role;
