create or replace function private.order_for_change(order_id uuid)
returns public.orders
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  ord public.orders;
begin
  perform private.require_user();
  select o.* into ord
  from public.orders as o
  where o.id = order_for_change.order_id
  for update;
  if not found or not private.is_member(ord.organization_id) then
    raise sqlstate 'PT404' using
      message = 'order not found',
      detail = coalesce(order_for_change.order_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not private.has_role(
    ord.organization_id, case when ord.kind = 'sales' then 'staff' else 'manager' end
  ) then
    raise sqlstate 'PT403' using
      message = format('your role may not change %s orders', ord.kind),
      detail = ord.id::text,
      hint = 'forbidden';
  end if;
  return ord;
end
$$;

comment on function private.order_for_change(uuid) is
'The order to change, locked FOR UPDATE, once the caller may change it: PT401 without a user,
PT404 not_found when it does not exist or is another organization''s, PT403 forbidden below
staff (sales orders) or manager (purchase orders). Security invoker: called by the security
definer order functions (update_order_status, update_draft_order).';

revoke all on function private.order_for_change(uuid) from public, anon, authenticated;
