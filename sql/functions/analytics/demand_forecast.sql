create or replace function public.demand_forecast(
  product_id uuid default null,
  horizon_days integer default 30,
  organization_id uuid default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(demand_forecast.organization_id);
  zone text := private.organization_timezone(org);
  section jsonb := private.analytics_section(
    case
      when demand_forecast.product_id is null then array['private.location_daily_sales']
      else array['private.daily_sales']
    end,
    array[
      'history_from', 'history_to', 'history_days', 'forecast', 'daily_forecast',
      'horizon_total', 'expected_daily', 'expected_total', 'model', 'mase'
    ]
  );
  as_of timestamptz := coalesce((section ->> 'as_of')::timestamptz, now());
  -- The last whole day of history: yesterday, as of the refresh, in the organization's zone.
  last_day date := (as_of at time zone zone)::date - 1;
  first_day date;
  demand double precision [];
  fit jsonb;
begin
  if horizon_days is null or horizon_days not between 1 and 365 then
    raise sqlstate 'PT400' using
      message = 'horizon_days must be between 1 and 365',
      detail = coalesce(horizon_days::text, 'null'),
      hint = 'validation_failed';
  end if;
  if demand_forecast.product_id is not null and not exists (
    select from public.products as p
    where p.id = demand_forecast.product_id and p.organization_id = org
  ) then
    raise sqlstate 'PT404' using
      message = 'product not found',
      detail = demand_forecast.product_id::text,
      hint = 'not_found';
  end if;
  -- Daily units: the organization's from private.location_daily_sales (a few rows a day), one
  -- product's from private.daily_sales (its own index range).
  -- Up to 365 days of history ending yesterday (as of the refresh), from the first sale.
  select greatest(min(x.day), last_day - 364) into first_day
  from (
    select min(d.day) as day
    from private.location_daily_sales as d
    where
      demand_forecast.product_id is null
      and d.organization_id = org and d.day <= last_day
    union all
    select min(d.day) as day
    from private.daily_sales as d
    where
      demand_forecast.product_id is not null
      and d.organization_id = org and d.product_id = demand_forecast.product_id
      and d.day <= last_day
  ) as x;
  first_day := coalesce(first_day, last_day);

  select array_agg(coalesce(t.units, 0)::double precision order by g.day)
  into demand
  from generate_series(first_day, last_day, interval '1 day') as g (day)
  left join (
    select d.day, sum(d.units) as units
    from private.location_daily_sales as d
    where
      demand_forecast.product_id is null
      and d.organization_id = org and d.day between first_day and last_day
    group by d.day
    union all
    select d.day, sum(d.units) as units
    from private.daily_sales as d
    where
      demand_forecast.product_id is not null
      and d.organization_id = org and d.product_id = demand_forecast.product_id
      and d.day between first_day and last_day
    group by d.day
  ) as t on g.day::date = t.day;

  fit := private.forecast_demand(demand, horizon_days, 28);
  return (fit - 'daily_units') || jsonb_build_object(
    'as_of', section -> 'as_of',
    'sections', jsonb_build_object('forecast', section),
    'timezone', zone,
    'organization_id', org,
    'product_id', demand_forecast.product_id,
    'history_from', first_day,
    'history_to', last_day,
    'horizon_days', horizon_days,
    'forecast', (
      select jsonb_agg(
        jsonb_build_object('day', last_day + u.i::integer, 'units', u.units) order by u.i
      )
      from jsonb_array_elements(fit -> 'daily_units') with ordinality as u (units, i)
    )
  );
end
$$;

comment on function public.demand_forecast(uuid, integer, uuid) is
'Daily demand forecast of one product (or of the whole organization when product_id is null).

History: fulfilled units per day, days counted in the organization''s time zone (setting
timezone, else UTC), from private.daily_sales (one product) or private.location_daily_sales (the
organization), from the first sale (at most 365 days back) to the day before as_of there. Model
(private.forecast_demand): intermittent series (1.32 days or more between demand days on
average) sba or tsb, and for very sparse ones (one demand day in five or fewer) also median;
others ses, holt_damped (damped trend), seasonal (weekly) or holt_winters_damped; parameters
minimise the in-sample one-step squared error; the model is the one with the lowest error on
the last 28 days when fitted without them, then refitted on all days. Returns as_of (the last
refresh of the view read), sections (forecast: as_of, private.analytics_section), timezone,
model (and method, the same), params and alpha, history_from/to, history_days,
zero_demand_share, intermittent, forecast (one {day, units} per day of the horizon: the point
forecast, which is 0 every day when median wins), daily_forecast (their mean), horizon_total,
expected_model, expected_daily and expected_total (the mean demand to plan stock with: the
chosen model''s, or when median wins the best mean model''s), expected_rmse, residual_sd, and the
hold-out''s holdout_days, mae, rmse and mase with every candidate''s mase and mae (candidates).
horizon_days outside 1..365: PT400 validation_failed; a product of another organization: PT404.
Security definer to read the view; filtered to private.active_organization(organization_id).';

revoke all on function public.demand_forecast(uuid, integer, uuid) from public, anon;

grant execute on function public.demand_forecast(uuid, integer, uuid) to authenticated;
