create or replace function public.inventory_turnover(
  "from" date default null,
  "to" date default null,
  organization_id uuid default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(inventory_turnover.organization_id);
  costing text := private.costing_method(null, org);
  zone text := private.organization_timezone(org);
  -- Days are the organization's: today is the date in its time zone.
  last_day date := coalesce(inventory_turnover."to", (now() at time zone zone)::date);
  first_day date := coalesce(inventory_turnover."from", last_day - 364);
  value_now numeric;
  cogs numeric;
  opening numeric;
  closing numeric;
  average numeric;
  n int;
  section jsonb := private.analytics_section(
    array[
      'private.organization_summary', 'private.location_daily_sales',
      'private.daily_stock_changes'
    ],
    array[
      'cogs', 'opening_inventory_value', 'closing_inventory_value', 'average_inventory_value',
      'turnover', 'annualized_turnover', 'days_of_inventory'
    ]
  );
begin
  perform private.check_period(first_day, last_day);
  n := last_day - first_day + 1;
  select coalesce(max(
    case when costing = 'fifo' then s.stock_value_fifo else s.stock_value_wac end
  ), 0) into value_now
  from private.organization_summary as s
  where s.organization_id = org;
  select coalesce(sum(case when costing = 'fifo' then d.cogs_fifo else d.cogs_wac end), 0)
  into cogs
  from private.location_daily_sales as d
  where d.organization_id = org and d.day between first_day and last_day;

  -- Stock value at the end of day x = value now - net value change on the days after x.
  with changes as (
    select
      c.day,
      case when costing = 'fifo' then c.net_value_fifo else c.net_value_wac end as net_value
    from private.daily_stock_changes as c
    where c.organization_id = org and c.day >= first_day
  ),

  values_by_day as (
    select
      g.day::date as day,
      value_now
      - (select coalesce(sum(c.net_value), 0) from changes as c)
      + coalesce(sum(c.net_value) over (order by g.day), 0) as value
    from generate_series(first_day, last_day, interval '1 day') as g (day)
    left join changes as c on g.day::date = c.day
  )

  select
    avg(v.value),
    max(v.value) filter (where v.day = last_day)
  into average, closing
  from values_by_day as v;
  select value_now - coalesce(sum(
    case when costing = 'fifo' then c.net_value_fifo else c.net_value_wac end
  ), 0) into opening
  from private.daily_stock_changes as c
  where c.organization_id = org and c.day >= first_day;

  return jsonb_build_object(
    'as_of', section -> 'as_of',
    'sections', jsonb_build_object('turnover', section),
    'timezone', zone,
    'organization_id', org,
    'from', first_day,
    'to', last_day,
    'days', n,
    'costing_method', costing,
    'cogs', round(cogs, 2),
    'opening_inventory_value', round(opening, 2),
    'closing_inventory_value', round(closing, 2),
    'average_inventory_value', round(average, 2),
    'turnover', case when average > 0 then round(cogs / average, 4) end,
    'annualized_turnover', case when average > 0 then round(cogs / average * 365 / n, 4) end,
    'days_of_inventory', case when cogs > 0 then round(average / (cogs / n), 2) end
  );
end
$$;

comment on function public.inventory_turnover(date, date, uuid) is
'Inventory turnover of the active organization over a period: COGS / average stock value.

from / to: inclusive days in the organization''s time zone (setting timezone, else UTC; default:
the 365 days to today there; at most 1100 days). Returns as_of, sections (turnover: as_of the
last refresh of the views read, private.analytics_section), timezone, days, costing_method, cogs
(cost of goods sold in the period, net of customer returns), opening (end of the day before
from), closing and average (over the days of the period) inventory value, turnover,
annualized_turnover (turnover * 365 / days) and days_of_inventory (average value / daily COGS);
null when a divisor is 0. Both are ledger facts by the organization''s costing_method (setting,
default weighted_average), never the catalog cost: cogs_wac or cogs_fifo of private.daily_sales,
and the stock value now (organization_summary: private.product_costs or the FIFO layers) less
the net value of the movements after each day (daily_stock_changes: their wac_value or
fifo_value). Reads the analytics views (security definer), filtered to
private.active_organization(organization_id). Bad arguments: PT400 validation_failed.';

revoke all on function public.inventory_turnover(date, date, uuid) from public, anon;

grant execute on function public.inventory_turnover(date, date, uuid) to authenticated;
