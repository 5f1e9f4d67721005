create or replace function private.intermittent_filter(
  demand double precision[],
  method text,
  alpha double precision,
  beta double precision,
  horizon integer,
  out sse double precision,
  out forecast double precision[]
)
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  n int := coalesce(array_length(demand, 1), 0);
  demands int;
  size double precision;
  spacing double precision;
  chance double precision;
  since int := 0;
  fitted double precision;
  err double precision;
begin
  sse := 0;
  select count(*) filter (where x.v > 0), avg(x.v) filter (where x.v > 0)
  into demands, size
  from unnest(demand) as x (v);
  if demands = 0 then
    forecast := array_fill(0::double precision, array[greatest(horizon, 0)]);
    return;
  end if;
  -- Both start from the whole series: mean non-zero size, mean spacing, share of demand days.
  spacing := n::double precision / demands;
  chance := demands::double precision / n;
  if method = 'sba' then
    for t in 1..n loop
      fitted := (1 - alpha / 2) * size / spacing;
      err := demand[t] - fitted;
      sse := sse + err * err;
      since := since + 1;
      if demand[t] > 0 then
        size := size + alpha * (demand[t] - size);
        spacing := spacing + alpha * (since - spacing);
        since := 0;
      end if;
    end loop;
    fitted := (1 - alpha / 2) * size / spacing;
  elsif method = 'tsb' then
    for t in 1..n loop
      fitted := chance * size;
      err := demand[t] - fitted;
      sse := sse + err * err;
      if demand[t] > 0 then
        chance := chance + beta * (1 - chance);
        size := size + alpha * (demand[t] - size);
      else
        chance := chance - beta * chance;
      end if;
    end loop;
    fitted := chance * size;
  else
    raise sqlstate 'PT400' using
      message = 'unknown intermittent method',
      detail = method,
      hint = 'validation_failed';
  end if;
  forecast := array_fill(greatest(fitted, 0), array[greatest(horizon, 0)]);
end
$$;

comment on function private.intermittent_filter(
  double precision[], text, double precision, double precision, integer
) is
'Runs an intermittent-demand method over a daily series: in-sample SSE and the next days.

sba: Syntetos-Boylan approximation (Croston''s sizes and intervals smoothed with alpha on demand
days, forecast (1 - alpha/2) * size / interval). tsb: Teunter-Syntetos-Babai (size smoothed
with alpha on demand days, probability of demand with beta every day, forecast probability *
size). Both start from the whole series'' mean size, interval and demand share. sse sums the
squared one-step-ahead errors; forecast is flat over horizon days. An unknown method: PT400.';

revoke all on function private.intermittent_filter(
  double precision[], text, double precision, double precision, integer
) from public, anon;

grant execute on function private.intermittent_filter(
  double precision[], text, double precision, double precision, integer
) to authenticated, service_role;
