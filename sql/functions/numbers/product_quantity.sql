create or replace function private.product_quantity(
  product_id uuid, value numeric, field text
)
returns numeric
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return private.check_number(
    product_quantity.value,
    product_quantity.field,
    coalesce(private.quantity_decimals(product_quantity.product_id), 3),
    0,
    true
  );
end
$$;

comment on function private.product_quantity(uuid, numeric, text) is
'A positive quantity of one product, checked: finite, > 0, with no more decimals than the
product''s unit takes (private.quantity_decimals); else PT422 validation_failed naming field.';

revoke all on function private.product_quantity(uuid, numeric, text) from public, anon;

grant execute on function private.product_quantity(uuid, numeric, text)
to authenticated, service_role;
