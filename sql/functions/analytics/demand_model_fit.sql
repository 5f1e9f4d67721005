create or replace function private.demand_model_fit(
  demand double precision[],
  model text,
  horizon integer,
  start double precision[] default null,
  out sse double precision,
  out forecast double precision[],
  out params jsonb,
  out evaluations integer,
  out u double precision[]
)
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  origin double precision[] := case model
    when 'ses' then array[0.2]
    when 'holt_damped' then array[0.2, 0.1, 0.6]
    when 'seasonal' then array[0.2, 0.1]
    when 'holt_winters_damped' then array[0.2, 0.1, 0.1, 0.6]
    when 'sba' then array[0.2]
    when 'tsb' then array[0.2, 0.2]
  end;
  k int := coalesce(array_length(origin, 1), 0);
  step double precision := case when start is null then 0.25 else 0.1 end;
  budget int := 15 + 25 * k;
  x double precision[];
  f double precision[];
  c double precision[];
  xr double precision[];
  xe double precision[];
  xc double precision[];
  fr double precision;
  fe double precision;
  fc double precision;
  best int;
  worst int;
  second int;
begin
  if k = 0 then
    raise sqlstate 'PT400' using
      message = 'unknown forecast model',
      detail = model,
      hint = 'validation_failed';
  end if;
  -- Nelder-Mead on the unit cube (private.demand_model_run maps it onto the parameters),
  -- minimising the in-sample one-step SSE; points are clamped into the cube.
  if start is not null and array_length(start, 1) = k then
    origin := start;
  end if;
  x := array_fill(0::double precision, array[(k + 1) * k]);
  f := array_fill(0::double precision, array[k + 1]);
  c := array_fill(0::double precision, array[k]);
  xr := c;
  xe := c;
  xc := c;
  evaluations := 0;
  for i in 1..k + 1 loop
    for j in 1..k loop
      x[(i - 1) * k + j] := origin[j] + case
        when i <> j + 1 then 0
        when origin[j] > 0.5 then -step
        else step
      end;
    end loop;
    select r.sse into fr
    from private.demand_model_run(demand, model, x[(i - 1) * k + 1:i * k], 0) as r;
    f[i] := fr;
    evaluations := evaluations + 1;
  end loop;
  loop
    best := 1;
    worst := 1;
    for i in 2..k + 1 loop
      if f[i] < f[best] then best := i; end if;
      if f[i] > f[worst] then worst := i; end if;
    end loop;
    second := best;
    for i in 1..k + 1 loop
      if i <> worst and f[i] > f[second] then second := i; end if;
    end loop;
    exit when evaluations >= budget or f[worst] - f[best] <= 1e-5 * abs(f[best]) + 1e-12;
    for j in 1..k loop
      c[j] := 0;
      for i in 1..k + 1 loop
        if i <> worst then c[j] := c[j] + x[(i - 1) * k + j] / k; end if;
      end loop;
      xr[j] := least(greatest(2 * c[j] - x[(worst - 1) * k + j], 0), 1);
    end loop;
    select r.sse into fr from private.demand_model_run(demand, model, xr, 0) as r;
    evaluations := evaluations + 1;
    if fr < f[best] then
      for j in 1..k loop
        xe[j] := least(greatest(3 * c[j] - 2 * x[(worst - 1) * k + j], 0), 1);
      end loop;
      select r.sse into fe from private.demand_model_run(demand, model, xe, 0) as r;
      evaluations := evaluations + 1;
      if fe < fr then
        xr := xe;
        fr := fe;
      end if;
    elsif fr >= f[second] then
      for j in 1..k loop
        xc[j] := case
          when fr < f[worst] then c[j] + 0.5 * (xr[j] - c[j])
          else c[j] + 0.5 * (x[(worst - 1) * k + j] - c[j])
        end;
      end loop;
      select r.sse into fc from private.demand_model_run(demand, model, xc, 0) as r;
      evaluations := evaluations + 1;
      if fc < least(fr, f[worst]) then
        xr := xc;
        fr := fc;
      else
        -- Shrink towards the best point.
        for i in 1..k + 1 loop
          if i <> best then
            for j in 1..k loop
              x[(i - 1) * k + j] := x[(best - 1) * k + j]
                + 0.5 * (x[(i - 1) * k + j] - x[(best - 1) * k + j]);
            end loop;
            select r.sse into fc
            from private.demand_model_run(demand, model, x[(i - 1) * k + 1:i * k], 0) as r;
            f[i] := fc;
            evaluations := evaluations + 1;
          end if;
        end loop;
        continue;
      end if;
    end if;
    for j in 1..k loop
      x[(worst - 1) * k + j] := xr[j];
    end loop;
    f[worst] := fr;
  end loop;
  u := x[(best - 1) * k + 1:best * k];
  select r.sse, r.forecast, r.params into sse, forecast, params
  from private.demand_model_run(demand, model, u, horizon) as r;
end
$$;

comment on function private.demand_model_fit(
  double precision[], text, integer, double precision[]
) is
'Fits one forecast model to a daily series by minimising its in-sample one-step SSE.

Nelder-Mead over the model''s parameters mapped from the unit cube (private.demand_model_run:
ses, holt_damped, seasonal, holt_winters_damped, sba, tsb), at most 15 + 25 k evaluations for
k parameters, stopping when the simplex''s SSEs agree to 1e-5. The search starts
from alpha 0.2 (a simplex of side 0.25) or, warm, from start (a point of the cube, e.g. the u
of a fit on fewer days; side 0.1). Returns the SSE, the next horizon days, the fitted
parameters, the number of evaluations and the point u of the cube.';

revoke all on function private.demand_model_fit(
  double precision[], text, integer, double precision[]
) from public, anon;

grant execute on function private.demand_model_fit(
  double precision[], text, integer, double precision[]
) to authenticated, service_role;
