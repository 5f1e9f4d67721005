create or replace function private.item_totals(entries jsonb)
returns table (item_id uuid, total numeric)
language sql
immutable
security invoker
set search_path = ''
as $$
  select x.item_id, sum(x.quantity) as total
  from jsonb_to_recordset(item_totals.entries) as x (item_id uuid, quantity numeric)
  group by x.item_id
$$;

comment on function private.item_totals(jsonb) is
'Quantity per order line of the entries private.movement_lines made ([{item_id, quantity, ...}]):
what fulfilment, receipt and returns check against a line and then add to it.';

revoke all on function private.item_totals(jsonb) from public, anon, authenticated;
