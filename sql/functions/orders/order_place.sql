create or replace function private.order_place(
  organization_id uuid,
  location_id uuid,
  supplier_id uuid
)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  active boolean;
  currency text;
begin
  select l.active into active
  from public.locations as l
  where l.id = order_place.location_id and l.organization_id = order_place.organization_id;
  if not found then
    raise sqlstate 'PT404' using
      message = 'location not found',
      detail = coalesce(order_place.location_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not active then
    raise sqlstate 'PT422' using
      message = 'location is inactive',
      detail = order_place.location_id::text,
      hint = 'validation_failed';
  end if;
  if order_place.supplier_id is not null then
    select s.currency into currency
    from public.suppliers as s
    where s.id = order_place.supplier_id and s.organization_id = order_place.organization_id;
    if not found then
      raise sqlstate 'PT404' using
        message = 'supplier not found',
        detail = order_place.supplier_id::text,
        hint = 'not_found';
    end if;
  end if;
  return currency;
end
$$;

comment on function private.order_place(uuid, uuid, uuid) is
'Check where an order happens: its location (of the organization, active) and its supplier (of
the organization, if any); returns the supplier''s currency (null without a supplier).

Shared by create_order and update_draft_order so both refuse the same things the same way
(PT404 not_found, PT422 validation_failed). Security invoker: the callers are definer
functions that already checked the caller''s role in the organization.';

revoke all on function private.order_place(uuid, uuid, uuid) from public, anon, authenticated;
