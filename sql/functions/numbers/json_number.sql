create or replace function private.json_number(doc jsonb, key text)
returns numeric
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  item jsonb := json_number.doc -> json_number.key;
begin
  if item is null or jsonb_typeof(item) = 'null' then
    return null;
  end if;
  if jsonb_typeof(item) <> 'number' then
    raise sqlstate 'PT422' using
      message = format('%s must be a JSON number', json_number.key),
      detail = json_number.key,
      hint = 'validation_failed';
  end if;
  return item::numeric;
end
$$;

comment on function private.json_number(jsonb, text) is
'The number under key in a JSON object, null when absent or JSON null; PT422 validation_failed
naming the key for anything else (strings such as "NaN" or "1e400" included: JSON numbers are
always finite).';

revoke all on function private.json_number(jsonb, text) from public, anon;

grant execute on function private.json_number(jsonb, text) to authenticated, service_role;
