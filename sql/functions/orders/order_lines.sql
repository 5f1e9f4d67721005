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
  bad bigint;
  duplicates bigint;
  missing text;
  inactive bigint;
begin
  if jsonb_typeof(order_lines.items) is distinct from 'array'
    or jsonb_array_length(order_lines.items) = 0 then
    raise sqlstate 'PT422' using
      message = 'items must be a non-empty array',
      hint = 'validation_failed';
  end if;

  with lines as (
    select
      e.ordinality as n,
      (e.value ->> 'product_id')::uuid as pid,
      (e.value ->> 'quantity')::numeric as qty,
      (e.value ->> 'unit_price')::numeric as price
    from jsonb_array_elements(order_lines.items) with ordinality as e (value, ordinality)
  )

  select
    count(*) filter (where l.pid is null or l.qty is null or l.qty <= 0 or l.price < 0),
    count(l.pid) - count(distinct l.pid),
    string_agg(l.pid::text, ', ' order by l.n) filter (where l.pid is not null and p.id is null),
    count(*) filter (where p.id is not null and not p.active)
  into bad, duplicates, missing, inactive
  from lines as l
  left join public.products as p
    on p.id = l.pid and p.organization_id = order_lines.organization_id;

  if bad > 0 then
    raise sqlstate 'PT422' using
      message = 'each item needs product_id and a positive quantity (unit_price >= 0)',
      hint = 'validation_failed';
  end if;
  if duplicates > 0 then
    raise sqlstate 'PT422' using
      message = 'a product may appear only once per order',
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

  return query
  select
    e.ordinality::integer,
    p.id,
    (e.value ->> 'quantity')::numeric,
    coalesce(
      (e.value ->> 'unit_price')::numeric,
      case when order_lines.kind = 'sales' then p.price else p.unit_cost end
    )
  from jsonb_array_elements(order_lines.items) with ordinality as e (value, ordinality)
  inner join public.products as p
    on p.id = (e.value ->> 'product_id')::uuid
  order by e.ordinality;
end
$$;

comment on function private.order_lines(uuid, text, jsonb) is
'Validated order lines from an items array: line_no, product_id, quantity, unit_price.

items: [{product_id, quantity, unit_price?}], non-empty; each product once, of the organization
(else PT404 not_found naming them), quantity > 0, unit_price >= 0 (default: the product price
for sales, its unit cost for purchases); sales only of active products. Other faults: PT422
validation_failed. The lines of public.create_order and public.update_draft_order. Security
invoker: called by those security definer functions after their access checks.';

revoke all on function private.order_lines(uuid, text, jsonb) from public, anon, authenticated;
