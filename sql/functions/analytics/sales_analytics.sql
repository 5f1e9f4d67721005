create or replace function public.sales_analytics(
  "from" date default null,
  "to" date default null,
  granularity text default 'day',
  group_by text default 'none',
  organization_id uuid default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(sales_analytics.organization_id);
  last_day date := coalesce(sales_analytics."to", current_date);
  first_day date := coalesce(sales_analytics."from", last_day - 29);
  result jsonb;
begin
  if first_day > last_day or last_day - first_day > 1100 then
    raise sqlstate 'PT400' using
      message = 'invalid date range',
      detail = format('from %s to %s (at most 1100 days)', first_day, last_day),
      hint = 'validation_failed';
  end if;
  if granularity is null or granularity not in ('day', 'week', 'month') then
    raise sqlstate 'PT400' using
      message = 'granularity must be day, week or month',
      detail = coalesce(granularity, 'null'),
      hint = 'validation_failed';
  end if;
  if group_by is null or group_by not in ('none', 'product', 'category', 'location') then
    raise sqlstate 'PT400' using
      message = 'group_by must be none, product, category or location',
      detail = coalesce(group_by, 'null'),
      hint = 'validation_failed';
  end if;

  with facts as (
    select
      date_trunc(sales_analytics.granularity, d.day)::date as period,
      -- The nil uuid stands for "no key" so that the joins below can hash on equality.
      case sales_analytics.group_by
        when 'none' then '00000000-0000-0000-0000-000000000000'::uuid
        when 'product' then d.product_id
        when 'location' then d.location_id
        when 'category' then coalesce((
          select p.category_id from public.products as p where p.id = d.product_id
        ), '00000000-0000-0000-0000-000000000000'::uuid)
      end as key,
      d.units,
      d.revenue,
      d.cogs,
      d.order_count
    from private.daily_sales as d
    where d.organization_id = org and d.day between first_day and last_day
  ),

  by_key as (
    select
      r.key,
      sum(r.revenue) as revenue,
      row_number() over (order by sum(r.revenue) desc, r.key) as rank
    from facts as r
    group by r.key
  ),

  series as (
    select
      r.period,
      case
        when k.rank <= 25 then nullif(r.key, '00000000-0000-0000-0000-000000000000'::uuid)
      end as key,
      k.rank <= 25 as named,
      sum(r.units) as units,
      sum(r.revenue) as revenue,
      sum(r.cogs) as cogs,
      sum(r.order_count) as order_lines
    from facts as r
    inner join by_key as k on r.key = k.key
    group by r.period, 2, 3
  )

  select jsonb_build_object(
    'as_of', (select min(a.refreshed_at) from private.analytics_refreshes as a),
    'organization_id', org,
    'from', first_day,
    'to', last_day,
    'granularity', sales_analytics.granularity,
    'group_by', sales_analytics.group_by,
    'totals', (
      select jsonb_build_object(
        'units', coalesce(sum(s.units), 0),
        'revenue', round(coalesce(sum(s.revenue), 0), 2),
        'cogs', round(coalesce(sum(s.cogs), 0), 2),
        'gross_margin', round(coalesce(sum(s.revenue) - sum(s.cogs), 0), 2),
        'order_lines', coalesce(sum(s.order_lines), 0)
      )
      from series as s
    ),
    'groups', coalesce((
      select jsonb_agg(jsonb_build_object(
        'key', nullif(k.key, '00000000-0000-0000-0000-000000000000'::uuid),
        'label', case sales_analytics.group_by
          when 'product' then (
            select p.sku || ' ' || p.name from public.products as p where p.id = k.key
          )
          when 'location' then (
            select l.code || ' ' || l.name from public.locations as l where l.id = k.key
          )
          when 'category' then coalesce(
            (select c.name from public.categories as c where c.id = k.key), 'uncategorized'
          )
          else 'all'
        end,
        'revenue', round(k.revenue, 2)
      ) order by k.rank)
      from by_key as k
      where k.rank <= 25
    ), '[]'::jsonb),
    'series', coalesce((
      select jsonb_agg(jsonb_build_object(
        'period', s.period,
        'key', s.key,
        'other', not s.named,
        'units', s.units,
        'revenue', round(s.revenue, 2),
        'cogs', round(s.cogs, 2),
        'order_lines', s.order_lines
      ) order by s.period, s.named desc, s.key)
      from series as s
    ), '[]'::jsonb)
  )
  into result;
  return result;
end
$$;

comment on function public.sales_analytics(date, date, text, text, uuid) is
'Fulfilled sales of the active organization per period, optionally split by a dimension.

from / to: inclusive UTC days of completion (default: the 30 days to today; at most 1100
days). granularity: day, week (ISO, from Monday) or month. group_by: none, product, category
(the product''s own category) or location. Returns as_of, totals (units, revenue, cogs,
gross_margin, order_lines = order x product pairs), groups (the 25 keys with the most revenue,
with a label) and series rows (period, key, units, revenue, cogs, order_lines); keys outside
the top 25 are summed into rows with key null and other = true. Reads private.daily_sales
(security definer), filtered to private.active_organization(organization_id). Bad arguments:
PT400 validation_failed.';

revoke all on function public.sales_analytics(date, date, text, text, uuid) from public, anon;

grant execute on function public.sales_analytics(date, date, text, text, uuid) to authenticated;
