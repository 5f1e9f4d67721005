create or replace function private.smoothed_demand(
  demand double precision[],
  method text,
  alpha double precision
)
returns double precision
language plpgsql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
declare
  n int := coalesce(array_length(demand, 1), 0);
  level double precision;
  size double precision;
  spacing double precision;
  since int := 0;
  seen boolean := false;
begin
  if n = 0 then
    return 0;
  end if;
  if method = 'ses' then
    level := demand[1];
    for t in 2..n loop
      level := alpha * demand[t] + (1 - alpha) * level;
    end loop;
    return level;
  elsif method = 'croston' then
    for t in 1..n loop
      since := since + 1;
      if demand[t] > 0 then
        if not seen then
          size := demand[t];
          spacing := since;
          seen := true;
        else
          size := size + alpha * (demand[t] - size);
          spacing := spacing + alpha * (since - spacing);
        end if;
        since := 0;
      end if;
    end loop;
    return case when seen then size / spacing else 0 end;
  end if;
  raise sqlstate 'PT400' using
    message = 'unknown forecast method',
    detail = method,
    hint = 'validation_failed';
end
$$;

comment on function private.smoothed_demand(double precision[], text, double precision) is
'One-step-ahead demand per period fitted on a series, by method ses or croston.

ses: simple exponential smoothing, level starts at the first value. croston: Croston''s method,
sizes of non-zero demands and intervals between them smoothed separately with the same alpha
(initialised on the first demand), forecast = size / interval; 0 when the series has no demand.';

revoke all on function private.smoothed_demand(double precision[], text, double precision)
from public, anon;

grant execute on function private.smoothed_demand(double precision[], text, double precision)
to authenticated, service_role;
