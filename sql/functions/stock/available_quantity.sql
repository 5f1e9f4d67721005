create or replace function private.available_quantity(product_id uuid, location_id uuid)
returns numeric
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return coalesce((
    select s.on_hand - s.reserved
    from public.stock_levels as s
    where
      s.product_id = available_quantity.product_id
      and s.location_id = available_quantity.location_id
  ), 0) - private.unusable_quantity(
    available_quantity.product_id, available_quantity.location_id
  );
end
$$;

comment on function private.available_quantity(uuid, uuid) is
'What can still be promised of a product at a location: on_hand - reserved - quantity in
unusable (expired or quarantined) lots. Negative when reserved stock has since expired.';

revoke all on function private.available_quantity(uuid, uuid) from public, anon;

grant execute on function private.available_quantity(uuid, uuid) to authenticated, service_role;
