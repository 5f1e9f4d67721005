create or replace function private.quantity_decimals(product_id uuid)
returns integer
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return (select coalesce(
    p.quantity_decimals::integer,
    case
      when lower(p.unit) in (
        'each', 'ea', 'pc', 'pcs', 'piece', 'pieces', 'unit', 'units', 'item', 'items', 'box',
        'boxes', 'pack', 'packs', 'case', 'cases', 'pair', 'pairs', 'bottle', 'bottles', 'can',
        'cans', 'bag', 'bags', 'roll', 'rolls', 'pallet', 'pallets', 'dozen'
      ) then 0
      else 3
    end
  )
  from public.products as p
  where p.id = quantity_decimals.product_id);
end
$$;

comment on function private.quantity_decimals(uuid) is
'Decimals a quantity of the product may carry: products.quantity_decimals, else 0 for counted
units (each, pcs, box, case, ...) and 3 for measured ones (kg, m, l, ...).';

revoke all on function private.quantity_decimals(uuid) from public, anon;

grant execute on function private.quantity_decimals(uuid) to authenticated, service_role;
