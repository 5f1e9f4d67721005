create or replace function private.order_lines(
  organization_id uuid,
  kind text,
  items jsonb
)
returns table (line_no integer, product_id uuid, quantity numeric, unit_price numeric)
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  duplicates bigint;
  missing text;
  inactive bigint;
  line record;
begin
  if jsonb_typeof(order_lines.items) is distinct from 'array'
    or jsonb_array_length(order_lines.items) = 0 then
    raise sqlstate 'PT422' using
      message = 'items must be a non-empty array',
      detail = 'items',
      hint = 'validation_failed';
  end if;

  -- Shapes first: every item an object whose product_id is a UUID and whose numbers are
  -- numbers (private.item_number refuses "NaN", "Infinity" and other strings naming the key).
  for line in
    select e.value, e.ordinality
    from jsonb_array_elements(order_lines.items) with ordinality as e (value, ordinality)
  loop
    if jsonb_typeof(line.value) is distinct from 'object' then
      raise sqlstate 'PT422' using
        message = format('item %s must be an object', line.ordinality),
        detail = 'items',
        hint = 'validation_failed';
    end if;
    if jsonb_typeof(line.value -> 'product_id') is distinct from 'string'
      or (line.value ->> 'product_id')
      !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise sqlstate 'PT422' using
        message = format('item %s needs product_id, a UUID', line.ordinality),
        detail = 'product_id',
        hint = 'validation_failed';
    end if;
    perform private.item_number(line.value, 'quantity');
    perform private.item_number(line.value, 'unit_price');
  end loop;

  with lines as (
    select
      e.ordinality as n,
      (e.value ->> 'product_id')::uuid as pid
    from jsonb_array_elements(order_lines.items) with ordinality as e (value, ordinality)
  )

  select
    count(l.pid) - count(distinct l.pid),
    string_agg(l.pid::text, ', ' order by l.n) filter (where l.pid is not null and p.id is null),
    count(*) filter (where p.id is not null and not p.active)
  into duplicates, missing, inactive
  from lines as l
  left join public.products as p
    on p.id = l.pid and p.organization_id = order_lines.organization_id;

  if duplicates > 0 then
    raise sqlstate 'PT422' using
      message = 'a product may appear only once per order',
      detail = 'product_id',
      hint = 'validation_failed';
  end if;
  if missing is not null then
    raise sqlstate 'PT404' using
      message = 'product not found',
      detail = missing,
      hint = 'not_found';
  end if;
  if order_lines.kind = 'sales' and inactive > 0 then
    raise sqlstate 'PT422' using
      message = 'inactive or archived products cannot be sold',
      hint = 'validation_failed';
  end if;

  -- Numbers: a positive quantity with no more decimals than the product's unit takes, a price
  -- of at most 2 decimals, >= 0 (order_items.unit_price keeps 2: nothing is rounded).
  for line in
    select e.value, e.ordinality, p.id, p.price, p.unit_cost
    from jsonb_array_elements(order_lines.items) with ordinality as e (value, ordinality)
    inner join public.products as p
      on p.id = (e.value ->> 'product_id')::uuid
    order by e.ordinality
  loop
    line_no := line.ordinality::integer;
    product_id := line.id;
    quantity := private.product_quantity(
      line.id, private.item_number(line.value, 'quantity'), 'quantity'
    );
    unit_price := private.item_number(line.value, 'unit_price');
    if unit_price is null then
      unit_price := case when order_lines.kind = 'sales' then line.price else line.unit_cost end;
    else
      unit_price := private.check_number(unit_price, 'unit_price', 2, 0);
    end if;
    return next;
  end loop;
end
$$;

comment on function private.order_lines(uuid, text, jsonb) is
'Validated order lines from an items array: line_no, product_id, quantity, unit_price.

items: [{product_id, quantity, unit_price?}], non-empty; each product once, of the organization
(else PT404 not_found naming them); quantity a JSON number > 0 with no more decimals than the
product''s unit takes (private.product_quantity); unit_price a JSON number >= 0 with at most 2
decimals (default: the product price for sales, its catalog unit cost for purchases); sales only
of active products. NaN, Infinity, strings and too many decimals are PT422 validation_failed
naming the field (detail = quantity / unit_price). The lines of public.create_order and
public.update_draft_order. Security invoker: called by those security definer functions after
their access checks.';

revoke all on function private.order_lines(uuid, text, jsonb) from public, anon, authenticated;
