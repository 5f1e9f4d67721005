create or replace function private.forecast_series(
  demand double precision[],
  horizon_days integer,
  alpha double precision default null,
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
  zero_share double precision;
  chosen text;
  fitted double precision;
  level double precision;
  mae double precision;
  scale double precision;
  mase double precision;
begin
  if horizon_days is null or horizon_days not between 1 and 365 then
    raise sqlstate 'PT400' using
      message = 'horizon_days must be between 1 and 365',
      detail = coalesce(horizon_days::text, 'null'),
      hint = 'validation_failed';
  end if;
  if alpha is null then
    -- No fixed constant: the fitted, selected model (issue 16).
    return private.forecast_demand(demand, horizon_days, coalesce(holdout_days, 28));
  end if;
  if alpha <= 0 or alpha > 1 then
    raise sqlstate 'PT400' using
      message = 'alpha must be in (0, 1] (or null: fitted)',
      detail = coalesce(alpha::text, 'null'),
      hint = 'validation_failed';
  end if;
  select coalesce(avg((x = 0)::int), 1) into zero_share from unnest(demand) as x;
  chosen := case when zero_share > 0.5 then 'croston' else 'ses' end;
  level := private.smoothed_demand(demand, chosen, alpha);

  -- Hold-out: fit on all but the last h periods, forecast them flat, compare (MASE scaled by
  -- the in-sample mean absolute one-step naive error). 0 when both errors are 0.
  h := least(coalesce(holdout_days, 28), n - 2);
  if h >= 1 then
    fitted := private.smoothed_demand(demand[1:n - h], chosen, alpha);
    select avg(abs(demand[t] - fitted)) into mae from generate_series(n - h + 1, n) as t;
    select avg(abs(demand[t] - demand[t - 1])) into scale from generate_series(2, n - h) as t;
    mase := case
      when scale > 0 then mae / scale
      when mae = 0 then 0
    end;
  else
    h := 0;
  end if;

  return jsonb_build_object(
    'method', chosen,
    'alpha', alpha,
    'history_days', n,
    'zero_demand_share', round(zero_share::numeric, 4),
    'daily_forecast', round(level::numeric, 4),
    'horizon_total', round((level * horizon_days)::numeric, 3),
    'holdout_days', h,
    'mae', round(mae::numeric, 4),
    'mase', round(mase::numeric, 4)
  );
end
$$;

comment on function private.forecast_series(
  double precision[], integer, double precision, integer
) is
'Forecast of a daily demand series: method, daily forecast and hold-out error (MASE).

alpha null (the default): the model private.forecast_demand selects (sba or tsb for
intermittent series, else ses, holt_damped, seasonal or holt_winters_damped, parameters fitted,
chosen by its error on the last holdout_days days) and its answer: method (= model),
daily_forecast (the mean of the horizon''s days), horizon_total, daily_units, mae, rmse and mase
of the hold-out, params. A fixed alpha in (0, 1]: the former method, Croston''s when more than
half of the days have zero demand (intermittent), simple exponential smoothing otherwise, with
that smoothing constant and a flat forecast. The error is measured by refitting without the
last holdout_days days (at most n - 2 with a fixed alpha, n - 14 fitted) and forecasting them:
mae is their mean absolute error, mase that divided by the in-sample mean absolute day-to-day
change (0 when both are 0, null when only the scale is 0 or there is no hold-out).';

revoke all on function private.forecast_series(
  double precision[], integer, double precision, integer
) from public, anon;

grant execute on function private.forecast_series(
  double precision[], integer, double precision, integer
) to authenticated, service_role;
