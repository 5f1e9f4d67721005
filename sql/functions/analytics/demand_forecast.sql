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
  as_of timestamptz := (select min(a.refreshed_at) from private.analytics_refreshes as a);
  last_day date := (as_of at time zone 'UTC')::date - 1;
  first_day date;
  alpha double precision;
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
  select coalesce((s.value ->> 'forecast_alpha')::double precision, 0.2) into alpha
  from (select 1) as one
  left join public.settings as s on s.organization_id = org;

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

  fit := private.forecast_series(demand, horizon_days, alpha, least(horizon_days, 28));
  return fit || jsonb_build_object(
    'as_of', as_of,
    'organization_id', org,
    'product_id', demand_forecast.product_id,
    'history_from', first_day,
    'history_to', last_day,
    'horizon_days', horizon_days,
    'forecast', (
      select jsonb_agg(
        jsonb_build_object('day', last_day + i, 'units', fit -> 'daily_forecast') order by i
      )
      from generate_series(1, horizon_days) as i
    )
  );
end
$$;

comment on function public.demand_forecast(uuid, integer, uuid) is
'Daily demand forecast of one product (or of the whole organization when product_id is null).

History: fulfilled units per UTC day from private.daily_sales (one product) or
private.location_daily_sales (the organization), from the first sale (at most 365 days back) to
the day before as_of. Method: Croston''s when more than half of those days
have no demand, simple exponential smoothing otherwise, alpha from settings forecast_alpha
(default 0.2). Returns as_of, method, alpha, history_from/to, zero_demand_share,
daily_forecast, horizon_total, forecast (one {day, units} per day of the horizon), and the
error on a hold-out of the last min(horizon_days, 28) days: mae and mase (see
private.forecast_series). horizon_days outside 1..365: PT400 validation_failed; a product of
another organization: PT404. Security definer to read the view; filtered to
private.active_organization(organization_id).';

revoke all on function public.demand_forecast(uuid, integer, uuid) from public, anon;

grant execute on function public.demand_forecast(uuid, integer, uuid) to authenticated;
