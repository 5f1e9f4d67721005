create or replace function private.movement_lines(order_id uuid, lines jsonb, keys text[])
returns table (
  entry integer,
  item_id uuid,
  product_id uuid,
  line_no integer,
  quantity numeric,
  lot_number text,
  expiry_date date,
  unit_cost numeric
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  line record;
  unknown text;
  raw text;
begin
  if jsonb_typeof(movement_lines.lines) is distinct from 'array'
    or jsonb_array_length(movement_lines.lines) = 0
    or jsonb_array_length(movement_lines.lines) > 500 then
    raise sqlstate 'PT422' using
      message = 'lines must be an array of 1 to 500 lines',
      detail = 'lines',
      hint = 'validation_failed';
  end if;
  for line in
    select e.value, e.ordinality
    from jsonb_array_elements(movement_lines.lines) with ordinality as e (value, ordinality)
    order by e.ordinality
  loop
    if jsonb_typeof(line.value) is distinct from 'object' then
      raise sqlstate 'PT422' using
        message = format('line %s must be an object', line.ordinality),
        detail = 'lines',
        hint = 'validation_failed';
    end if;
    select min(k.key) into unknown
    from jsonb_object_keys(line.value) as k (key)
    where k.key <> all(movement_lines.keys);
    if unknown is not null then
      raise sqlstate 'PT422' using
        message = format('unknown field %s in line %s', unknown, line.ordinality),
        detail = unknown,
        hint = 'validation_failed';
    end if;
    raw := line.value ->> 'product_id';
    if jsonb_typeof(line.value -> 'product_id') is distinct from 'string'
      or raw !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
      raise sqlstate 'PT422' using
        message = format('line %s needs product_id, a UUID', line.ordinality),
        detail = 'product_id',
        hint = 'validation_failed';
    end if;
    select i.id, i.product_id, i.line_no into item_id, product_id, line_no
    from public.order_items as i
    where i.order_id = movement_lines.order_id and i.product_id = raw::uuid;
    if not found then
      raise sqlstate 'PT422' using
        message = format('product %s is not on this order', raw),
        detail = 'product_id',
        hint = 'validation_failed';
    end if;
    entry := line.ordinality::integer;
    quantity := private.product_quantity(
      product_id, private.item_number(line.value, 'quantity'), 'quantity'
    );
    lot_number := null;
    if line.value ? 'lot_number' and jsonb_typeof(line.value -> 'lot_number') <> 'null' then
      lot_number := line.value ->> 'lot_number';
      if jsonb_typeof(line.value -> 'lot_number') <> 'string'
        or char_length(lot_number) not between 1 and 100 then
        raise sqlstate 'PT422' using
          message = 'lot_number must be a text of 1 to 100 characters',
          detail = 'lot_number',
          hint = 'validation_failed';
      end if;
    end if;
    expiry_date := null;
    if line.value ? 'expiry_date' and jsonb_typeof(line.value -> 'expiry_date') <> 'null' then
      raw := line.value ->> 'expiry_date';
      if jsonb_typeof(line.value -> 'expiry_date') <> 'string'
        or raw !~ '^\d{4}-\d{2}-\d{2}$' then
        raise sqlstate 'PT422' using
          message = 'expiry_date must be a date (YYYY-MM-DD)',
          detail = 'expiry_date',
          hint = 'validation_failed';
      end if;
      begin
        expiry_date := raw::date;
      exception when others then
        raise sqlstate 'PT422' using
          message = 'expiry_date must be a date (YYYY-MM-DD)',
          detail = 'expiry_date',
          hint = 'validation_failed';
      end;
    end if;
    unit_cost := private.item_number(line.value, 'unit_cost');
    if unit_cost is not null then
      unit_cost := private.check_number(unit_cost, 'unit_cost', 4, 0);
    end if;
    return next;
  end loop;
end
$$;

comment on function private.movement_lines(uuid, jsonb, text[]) is
'Validated lines of a fulfilment, receipt or return of one order: entry (position), item_id,
product_id, line_no, quantity, lot_number, expiry_date, unit_cost.

lines: 1 to 500 objects with only the given keys; product_id a line of the order (a product may
appear in several lines, e.g. one per lot); quantity a number > 0 with no more decimals than
the product''s unit takes; lot_number 1-100 characters; expiry_date YYYY-MM-DD; unit_cost a
number >= 0 with at most 4 decimals. Anything else is PT422 validation_failed with the field
in detail. Security invoker: called by the security definer order functions after
private.order_for_change.';

revoke all on function private.movement_lines(uuid, jsonb, text[])
from public, anon, authenticated;
