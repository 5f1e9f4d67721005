create or replace function private.forecast_demand(
  demand double precision[],
  horizon_days integer,
  holdout_days integer default 28
)
returns jsonb
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  n int := coalesce(array_length(demand, 1), 0);
  h int;
  demands int;
  zero_share double precision;
  intermittent boolean;
  sparse boolean;
  models text [];
  chosen text;
  winner text;
  fit record;
  train double precision[];
  scale double precision;
  mae double precision;
  mase double precision;
  best_mae double precision;
  best_mase double precision;
  rmse double precision;
  best_rmse double precision;
  -- The best model that forecasts the mean (every one but median): what stock is planned with.
  mean_model text;
  mean_mae double precision;
  mean_rmse double precision;
  expected_total double precision;
  flat double precision;
  tried jsonb := '[]';
  starts jsonb := '{}';
  total double precision;
begin
  if horizon_days is null or horizon_days not between 1 and 365 then
    raise sqlstate 'PT400' using
      message = 'horizon_days must be between 1 and 365',
      detail = coalesce(horizon_days::text, 'null'),
      hint = 'validation_failed';
  end if;
  select count(*) filter (where x.v > 0), coalesce(avg((x.v = 0)::int), 1)
  into demands, zero_share
  from unnest(demand) as x (v);

  -- Intermittent when the average interval between demands is 1.32 days or more (Syntetos and
  -- Boylan): SBA or TSB. Otherwise exponential smoothing: level, damped trend, weekly season
  -- (with two weeks of training data at least) and both.
  intermittent := demands > 0 and n::double precision / demands >= 1.32;
  -- Very sparse (demand on one day in five or fewer): every day's most likely demand is 0, and
  -- the median of the training days (0) is a candidate for the per-day point forecast.
  sparse := demands > 0 and n::double precision / demands >= 5;
  h := least(coalesce(holdout_days, 28), n - 14);
  models := case
    when demands = 0 then array['zero']
    when sparse then array['sba', 'tsb', 'median']
    when intermittent then array['sba', 'tsb']
    when n - greatest(h, 0) >= 21
      then array['ses', 'holt_damped', 'seasonal', 'holt_winters_damped']
    else array['ses', 'holt_damped']
  end;
  chosen := models[1];

  -- Hold-out: each candidate fitted without the last h days forecasts them; the lowest MASE
  -- (mean absolute error over the in-sample mean absolute day-to-day change) wins. With no
  -- day-to-day change the mean absolute error decides.
  if h >= 1 then
    train := demand[1:n - h];
    select avg(abs(train[t] - train[t - 1])) into scale from generate_series(2, n - h) as t;
    foreach chosen in array models loop
      if chosen in ('zero', 'median') then
        select avg(abs(demand[n - h + i] - m.v)), sqrt(avg((demand[n - h + i] - m.v) ^ 2))
        into mae, rmse
        from generate_series(1, h) as i
        cross join (
          select coalesce(percentile_disc(0.5) within group (order by y.v), 0) as v
          from unnest(train) as y (v)
          where chosen = 'median'
        ) as m;
      else
        fit := private.demand_model_fit(train, chosen, h);
        starts := starts || jsonb_build_object(chosen, to_jsonb(fit.u));
        select avg(abs(demand[n - h + i] - fit.forecast[i])),
          sqrt(avg((demand[n - h + i] - fit.forecast[i]) ^ 2))
        into mae, rmse
        from generate_series(1, h) as i;
      end if;
      mase := case when scale > 0 then mae / scale when mae = 0 then 0 end;
      tried := tried || jsonb_build_object(
        'model', chosen, 'mase', round(mase::numeric, 4), 'mae', round(mae::numeric, 4)
      );
      if best_mae is null or mae < best_mae then
        winner := chosen;
        best_mae := mae;
        best_mase := mase;
        best_rmse := rmse;
      end if;
      if chosen <> 'median' and (mean_mae is null or mae < mean_mae) then
        mean_model := chosen;
        mean_mae := mae;
        mean_rmse := rmse;
      end if;
    end loop;
    chosen := winner;
  else
    h := 0;
  end if;

  if chosen in ('zero', 'median') then
    select coalesce(percentile_disc(0.5) within group (order by x.v), 0) into flat
    from unnest(demand) as x (v)
    where chosen = 'median';
    fit := null;
    select
      coalesce(sum((x.v - flat) ^ 2), 0) as sse,
      array_fill(flat, array[horizon_days]) as forecast,
      '{}'::jsonb as params
    into fit
    from unnest(demand) as x (v);
  else
    fit := private.demand_model_fit(
      demand, chosen, horizon_days,
      (
        select array_agg(x.v::double precision)
        from jsonb_array_elements_text(starts -> chosen) as x (v)
      )
    );
  end if;
  select sum(x.v) into total from unnest(fit.forecast) as x (v);
  -- The median forecasts each day's most likely demand; the mean to plan stock with is the best
  -- mean model's, refitted on every day.
  if chosen = 'median' then
    select sum(x.v) into expected_total
    from unnest((private.demand_model_fit(
      demand, mean_model, horizon_days,
      (
        select array_agg(x.v::double precision)
        from jsonb_array_elements_text(starts -> mean_model) as x (v)
      )
    )).forecast) as x (v);
  else
    mean_model := chosen;
    mean_rmse := best_rmse;
  end if;

  return jsonb_build_object(
    'model', chosen,
    'method', chosen,
    'alpha', round((fit.params ->> 'alpha')::numeric, 4),
    'params', (
      select coalesce(jsonb_object_agg(p.key, round(p.value::text::numeric, 4)), '{}')
      from jsonb_each(fit.params) as p
    ),
    'intermittent', intermittent,
    'history_days', n,
    'zero_demand_share', round(zero_share::numeric, 4),
    'daily_forecast', round((total / horizon_days)::numeric, 4),
    'horizon_total', round(total::numeric, 3),
    'daily_units', (
      select jsonb_agg(round(x.v::numeric, 4) order by x.i)
      from unnest(fit.forecast) with ordinality as x (v, i)
    ),
    'expected_model', mean_model,
    'expected_daily', round((coalesce(expected_total, total) / horizon_days)::numeric, 4),
    'expected_total', round(coalesce(expected_total, total)::numeric, 3),
    'expected_rmse', round(mean_rmse::numeric, 4),
    'residual_sd', case
      when n > 1 then round(sqrt(fit.sse / n)::numeric, 4)
    end,
    'holdout_days', h,
    'mae', round(best_mae::numeric, 4),
    'rmse', round(best_rmse::numeric, 4),
    'mase', round(best_mase::numeric, 4),
    'candidates', tried
  );
end
$$;

comment on function private.forecast_demand(double precision[], integer, integer) is
'Forecast of a daily demand series by the model that forecast its last days best (MASE).

Candidates: intermittent series (average interval between demand days 1.32 or more) sba and
tsb; others ses, holt_damped (damped trend), and with 21 training days or more seasonal (weekly
additive season) and holt_winters_damped (both); a series without demand: zero. Each is fitted
by private.demand_model_fit (parameters minimising the in-sample one-step SSE) on all but the
last holdout_days days (at most n - 14) and forecasts them; the lowest mean absolute error wins
(ties: the simpler model). The winner is refitted on the whole series (its search starting from
the hold-out fit''s parameters). Returns model (and method, the same), its params and alpha,
daily_units (one per horizon day), daily_forecast (their mean), horizon_total, residual_sd
(root mean squared one-step error in sample), the hold-out''s mae, rmse (the standard deviation
of a day''s error, for safety stock) and mase (mae divided by the training days'' mean absolute
day-to-day change: 0 when both are 0, null when only that change is 0), every candidate''s mase
and mae, history_days, zero_demand_share and intermittent.';

revoke all on function private.forecast_demand(double precision[], integer, integer)
from public, anon;

grant execute on function private.forecast_demand(double precision[], integer, integer)
to authenticated, service_role;
