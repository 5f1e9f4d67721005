create or replace function private.refresh_demand_forecasts()
returns integer
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  -- Fitting stops when this budget is spent (setting nimbus.forecast_budget_ms, default 15 s);
  -- the next refresh goes on where it stopped.
  deadline timestamptz := clock_timestamp() + make_interval(
    secs => coalesce(nullif(current_setting('nimbus.forecast_budget_ms', true), ''), '15000')::int
    / 1000.0
  );
  fitted integer;
begin
  -- Pairs that no longer sold in the window (or whose product is gone) lose their forecast.
  -- Each organization's window ends yesterday in its time zone.
  with windows as materialized (
    select o.id as organization_id,
      (now() at time zone private.organization_timezone(o.id))::date - 1 as last_day
    from public.organizations as o
  )

  delete from private.demand_forecasts as f
  where not exists (
    select from private.daily_sales as d
    inner join windows as w on d.organization_id = w.organization_id
    where
      d.product_id = f.product_id and d.location_id = f.location_id
      and d.day between w.last_day - 89 and w.last_day and d.units > 0
  );

  -- Fit each pair that sold in the window and has no forecast for this window yet, through the
  -- forecast function's signature with its defaults: a better model there is a better reorder
  -- point here. Dynamic SQL so that the plan is made when the function is called.
  execute
    '
  with
  windows as materialized (
    select o.id as organization_id,
      (now() at time zone private.organization_timezone(o.id))::date - 1 as last_day
    from public.organizations as o
  ),

  series as (
    select
      d.organization_id,
      d.product_id,
      d.location_id,
      w.last_day,
      array_agg(d.day - w.last_day + 90) as days,
      array_agg(d.units::double precision) as units,
      sum(d.units) as total
    from private.daily_sales as d
    inner join windows as w on d.organization_id = w.organization_id
    where
      d.day between w.last_day - 89 and w.last_day and d.units > 0
      and not exists (
        select from private.demand_forecasts as f
        where
          f.product_id = d.product_id and f.location_id = d.location_id
          and f.demand_to = w.last_day
      )
    group by d.organization_id, d.product_id, d.location_id, w.last_day
  ),

  queue as (
    -- Never fitted first, then the best sellers.
    select s.*
    from series as s
    left join private.demand_forecasts as f
      on s.product_id = f.product_id and s.location_id = f.location_id
    order by f.product_id is not null, s.total desc, s.product_id, s.location_id
  ),

  fits as (
    select
      s.organization_id,
      s.product_id,
      s.location_id,
      s.last_day,
      -- The budget is checked before each fit, in queue order: a CASE evaluates its branch only
      -- when the test holds (a WHERE beside the fit let the planner fit every row first: a
      -- 10 s budget ran 57 s on the large data set).
      case when clock_timestamp() < $1 then private.forecast_series(
        demand => (
          select array_agg(coalesce(s.units[array_position(s.days, i)], 0) order by i)
          from generate_series(1, 90) as i
        ),
        horizon_days => 28
      ) end as fit
    from queue as s
  )

  insert into private.demand_forecasts as f (
    product_id, location_id, organization_id, demand_to, method, daily_forecast, error_sigma,
    mase, fitted_at
  )
  select
    x.product_id,
    x.location_id,
    x.organization_id,
    x.last_day,
    coalesce(x.fit ->> ''expected_model'', x.fit ->> ''method''),
    greatest(coalesce(
      (x.fit ->> ''expected_daily'')::double precision,
      (x.fit ->> ''horizon_total'')::double precision / 28,
      (x.fit ->> ''daily_forecast'')::double precision
    ), 0),
    coalesce(
      (x.fit ->> ''expected_rmse'')::double precision,
      (x.fit ->> ''rmse'')::double precision,
      1.2533 * (x.fit ->> ''mae'')::double precision
    ),
    coalesce(
      (
        select (c.value ->> ''mase'')::double precision
        from jsonb_array_elements(x.fit -> ''candidates'') as c (value)
        where c.value ->> ''model'' = x.fit ->> ''expected_model''
      ),
      (x.fit ->> ''mase'')::double precision
    ),
    now()
  from fits as x
  where
    coalesce(
      x.fit ->> ''expected_daily'', x.fit ->> ''horizon_total'', x.fit ->> ''daily_forecast''
    ) is not null
  on conflict (product_id, location_id) do update
  set
    organization_id = excluded.organization_id,
    demand_to = excluded.demand_to,
    method = excluded.method,
    daily_forecast = excluded.daily_forecast,
    error_sigma = excluded.error_sigma,
    mase = excluded.mase,
    fitted_at = excluded.fitted_at
    '
  using deadline;
  get diagnostics fitted = row_count;
  return fitted;
end
$$;

comment on function private.refresh_demand_forecasts() is
'Fit the demand forecast of each product at each location that sold in the last 90 days.

For every (product, location) with sales in the 90 days ending yesterday in its organization''s
time zone (private.organization_timezone) and no forecast for that window yet (never fitted
first, then by units sold), until the budget nimbus.forecast_budget_ms (default 15000) is spent,
calls private.forecast_series(demand => its 90 daily units, zero days included, horizon_days =>
28) with the function''s own defaults, and stores the mean the answer plans stock with: method =
expected_model, daily_forecast = expected_daily, error_sigma = expected_rmse (older answers:
horizon_total / 28, rmse, else 1.2533 * mae, the normal relation) and that model''s mase in
private.demand_forecasts; forecasts of pairs without sales in the window are deleted. So each
series is fitted once a day, however often the views refresh; private.reorder_inputs uses a
forecast up to 7 days old, else the window''s mean and sigma. Returns how many it fitted.
Internal: called by private.refresh_analytics_views before private.reorder_inputs.';

revoke all on function private.refresh_demand_forecasts() from public, anon, authenticated;
