create or replace function private.check_number(
  value numeric,
  field text,
  decimals integer,
  min numeric default null,
  strict_min boolean default false
)
returns numeric
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if check_number.value is null then
    raise sqlstate 'PT422' using
      message = format('%s is required', check_number.field),
      detail = check_number.field,
      hint = 'validation_failed';
  end if;
  if check_number.value = 'NaN'::numeric
    or check_number.value in ('Infinity'::numeric, '-Infinity'::numeric)
    or abs(check_number.value) >= 100000000000 then
    raise sqlstate 'PT422' using
      message = format('%s must be a finite number below 1e11', check_number.field),
      detail = check_number.field,
      hint = 'validation_failed';
  end if;
  if check_number.value <> round(check_number.value, check_number.decimals) then
    raise sqlstate 'PT422' using
      message = format(
        '%s may have at most %s decimal(s)', check_number.field, check_number.decimals
      ),
      detail = check_number.field,
      hint = 'validation_failed';
  end if;
  if check_number.min is not null and (
    check_number.value < check_number.min
    or (check_number.strict_min and check_number.value = check_number.min)
  ) then
    raise sqlstate 'PT422' using
      message = format(
        '%s must be %s %s', check_number.field,
        case when check_number.strict_min then 'greater than' else 'at least' end,
        check_number.min
      ),
      detail = check_number.field,
      hint = 'validation_failed';
  end if;
  -- Normalise negative zero and trailing zeros away: the stored value is the number itself.
  return round(check_number.value, check_number.decimals) + 0;
end
$$;

comment on function private.check_number(numeric, text, integer, numeric, boolean) is
'A number as it enters NIMBUS: finite, |value| < 1e11, at most decimals decimals, >= min
(> min when strict_min); else PT422 validation_failed with the field name in message and detail.

Every function that takes a quantity or an amount checks it here before storing it, so no
column rounds one row and not another, and NaN (which PostgreSQL sorts above every number)
never reaches a comparison. Returns the value.';

revoke all on function private.check_number(numeric, text, integer, numeric, boolean)
from public, anon;

grant execute on function private.check_number(numeric, text, integer, numeric, boolean)
to authenticated, service_role;
