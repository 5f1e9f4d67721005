create or replace function private.ets_filter(
  demand double precision[],
  alpha double precision,
  beta double precision,
  gamma double precision,
  phi double precision,
  trend boolean,
  season boolean,
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
  m constant int := 7;
  k int;
  level double precision;
  slope double precision := 0;
  seasonal double precision[] := array_fill(0::double precision, array[7]);
  centre double precision;
  fitted double precision;
  err double precision;
  damp double precision := 0;
  power double precision := 1;
  slot int;
begin
  sse := 0;
  forecast := array_fill(0::double precision, array[greatest(horizon, 0)]);
  if n = 0 then
    return;
  end if;
  -- Initial states from the first four weeks (whole weeks when seasonal): a least-squares line
  -- (trend) or the mean (level), then each weekday's mean deviation from it, centred.
  season := season and n >= 2 * m;
  k := least(n, 4 * m);
  if season then
    k := k / m * m;
  end if;
  if trend and k >= 2 then
    select regr_intercept(x.v, x.t), regr_slope(x.v, x.t) into level, slope
    from unnest(demand[1:k]) with ordinality as x (v, t);
  else
    select avg(x.v) into level from unnest(demand[1:k]) as x (v);
  end if;
  slope := coalesce(slope, 0);
  if not trend then
    phi := 1;
    beta := 0;
    slope := 0;
  end if;
  if season then
    select array_agg(x.dev order by x.slot) into seasonal
    from (
      select (u.t - 1) % m + 1 as slot, avg(u.v - level - slope * u.t) as dev
      from unnest(demand[1:k]) with ordinality as u (v, t)
      group by 1
    ) as x;
    select avg(x.s) into centre from unnest(seasonal) as x (s);
    for j in 1..m loop
      seasonal[j] := seasonal[j] - centre;
    end loop;
  else
    gamma := 0;
  end if;

  -- Additive error correction form of ETS(A, Ad or N, A or N): one-step errors give the SSE.
  for t in 1..n loop
    slot := (t - 1) % m + 1;
    fitted := level + phi * slope + seasonal[slot];
    err := demand[t] - fitted;
    sse := sse + err * err;
    level := level + phi * slope + alpha * err;
    slope := phi * slope + beta * err;
    seasonal[slot] := seasonal[slot] + gamma * err;
  end loop;

  for i in 1..greatest(horizon, 0) loop
    power := power * phi;
    damp := damp + power;
    forecast[i] := greatest(level + damp * slope + seasonal[(n + i - 1) % m + 1], 0);
  end loop;
end
$$;

comment on function private.ets_filter(
  double precision[], double precision, double precision, double precision, double precision,
  boolean, boolean, integer
) is
'Runs additive exponential smoothing over a daily series: in-sample SSE and the next days.

ETS with additive errors: level (alpha), optional damped trend (beta, phi) and optional weekly
season (period 7, gamma). Initial states from the first four weeks (a least-squares line or the
mean, and each weekday''s centred mean deviation); the season needs two weeks of history.
sse sums the squared one-step-ahead errors over every day; forecast holds the next horizon days
(clamped at 0: demand is never negative). Parameters are not checked: callers map them from
the unit cube (private.demand_model_run).';

revoke all on function private.ets_filter(
  double precision[], double precision, double precision, double precision, double precision,
  boolean, boolean, integer
) from public, anon;

grant execute on function private.ets_filter(
  double precision[], double precision, double precision, double precision, double precision,
  boolean, boolean, integer
) to authenticated, service_role;
