create or replace function private.item_number(doc jsonb, key text)
returns numeric
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  item jsonb := item_number.doc -> item_number.key;
begin
  if item is null or jsonb_typeof(item) = 'null' then
    return null;
  end if;
  if jsonb_typeof(item) = 'string'
    and char_length(item #>> '{}') <= 40
    and (item #>> '{}') ~ '^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' then
    return (item #>> '{}')::numeric;
  end if;
  -- JSON numbers pass; anything else (true, objects, "NaN", "Infinity", "1e5") is PT422.
  return private.json_number(item_number.doc, item_number.key);
end
$$;

comment on function private.item_number(jsonb, text) is
'The number under key in an order or movement line: a JSON number, or a plain decimal string
("4.25", as /api/v1 sends decimals); null when absent or JSON null. Anything else ("NaN",
"Infinity", "1e5", true) is PT422 validation_failed naming the key (private.json_number). The
caller then checks range and decimals with private.check_number / private.product_quantity.';

revoke all on function private.item_number(jsonb, text) from public, anon, authenticated;
