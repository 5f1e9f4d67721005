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
  costing text := private.costing_method(null, org);
  zone text := private.organization_timezone(org);
  -- Days are the organization's: today is the date in its time zone.
  last_day date := coalesce(sales_analytics."to", (now() at time zone zone)::date);
  first_day date := coalesce(sales_analytics."from", last_day - 29);
  product_rows bigint;
  -- Above this many product rows in the period, group_by product ranks candidates only (a
  -- setting so that tests can compare both ways).
  prune_above bigint := coalesce(
    nullif(current_setting('nimbus.analytics_prune_rows', true), '')::bigint, 20000
  );
  stats_to date;
  bound text;
  tau numeric;
  candidates uuid [];
  pruned boolean := false;
  section jsonb;
  result jsonb;
begin
  perform private.check_period(first_day, last_day);
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

  -- group_by product over many product rows: rank only the products that can be in the top 25.
  -- Revenue is never negative, so a product's revenue since a day (product_sales_stats: all
  -- days, or the days after demand_to - 365, - 90, - 30) bounds its revenue in a period starting
  -- on or after that day: once 25 products are known to reach tau in the period, no product
  -- whose bound is below tau can be in the top 25.
  if sales_analytics.group_by = 'product' then
    select coalesce(sum(x.facts), 0) into product_rows
    from private.location_daily_sales as x
    where x.organization_id = org and x.day between first_day and last_day;
    if product_rows > prune_above then
      select s.demand_to into stats_to
      from private.product_sales_stats as s
      where s.organization_id = org
      limit 1;
      bound := case
        when first_day > stats_to - 30 then 'revenue_30d'
        when first_day > stats_to - 90 then 'revenue_90d'
        when first_day > stats_to - 365 then 'revenue_365d'
        else 'revenue_total'
      end;
      execute format(
        $q$
        select r.revenue
        from (
          select s.product_id
          from private.product_sales_stats as s
          where s.organization_id = $1
          order by s.%1$I desc
          limit 50
        ) as seed
        cross join lateral (
          select sum(d.revenue) as revenue
          from private.daily_sales as d
          where d.organization_id = $1 and d.product_id = seed.product_id
            and d.day between $2 and $3
        ) as r
        order by r.revenue desc nulls last
        offset 24 limit 1
        $q$,
        bound
      ) into tau using org, first_day, last_day;
      if tau > 0 then
        execute format(
          $q$
          select array_agg(s.product_id)
          from private.product_sales_stats as s
          where s.organization_id = $1 and s.%1$I >= $2
          $q$,
          bound
        ) into candidates using org, tau;
        pruned := cardinality(candidates) <= 2000;
      end if;
    end if;
  end if;

  section := private.analytics_section(
    case sales_analytics.group_by
      when 'category' then array['private.category_daily_sales']
      when 'product' then array[
        'private.daily_sales', 'private.product_sales_stats', 'private.location_daily_sales'
      ]
      else array['private.location_daily_sales']
    end,
    array['totals', 'groups', 'series']
  );

  with facts as (
    -- Every fact row of the period at the coarsest grain the grouping allows.
    select
      date_trunc(sales_analytics.granularity, f.day)::date as period,
      f.key,
      f.units,
      f.revenue,
      f.cogs_wac,
      f.cogs_fifo,
      f.order_lines
    from (
      -- The nil uuid stands for "no key" so that the joins below can hash on equality.
      select
        d.day,
        case sales_analytics.group_by
          when 'location' then d.location_id
          else '00000000-0000-0000-0000-000000000000'::uuid
        end as key,
        d.units,
        d.revenue,
        d.cogs_wac,
        d.cogs_fifo,
        d.order_lines
      from private.location_daily_sales as d
      where
        sales_analytics.group_by in ('none', 'location')
        and d.organization_id = org and d.day between first_day and last_day
      union all
      select d.day, d.category_id, d.units, d.revenue, d.cogs_wac, d.cogs_fifo, d.order_lines
      from private.category_daily_sales as d
      where
        sales_analytics.group_by = 'category'
        and d.organization_id = org and d.day between first_day and last_day
      union all
      select d.day, d.product_id, d.units, d.revenue, d.cogs_wac, d.cogs_fifo, d.order_count
      from private.daily_sales as d
      where
        sales_analytics.group_by = 'product' and not pruned
        and d.organization_id = org and d.day between first_day and last_day
    ) as f
  ),

  by_key as (
    select
      r.key,
      sum(r.revenue) as revenue,
      row_number() over (order by sum(r.revenue) desc, r.key) as rank
    from facts as r
    group by r.key
    union all
    -- Pruned: the candidates only; the ranks up to 25 are the ranks among all products.
    select
      d.product_id,
      sum(d.revenue),
      row_number() over (order by sum(d.revenue) desc, d.product_id)
    from private.daily_sales as d
    where
      pruned
      and d.organization_id = org and d.product_id = any(candidates)
      and d.day between first_day and last_day
    group by d.product_id
  ),

  top_facts as (
    -- Pruned: the top 25 products per period, with the number of fact rows they hold.
    select
      date_trunc(sales_analytics.granularity, d.day)::date as period,
      d.product_id as key,
      sum(d.units) as units,
      sum(d.revenue) as revenue,
      sum(d.cogs_wac) as cogs_wac,
      sum(d.cogs_fifo) as cogs_fifo,
      sum(d.order_count) as order_lines,
      count(*) as facts
    from private.daily_sales as d
    inner join by_key as k on d.product_id = k.key and k.rank <= 25
    where
      pruned
      and d.organization_id = org and d.product_id = any(candidates)
      and d.day between first_day and last_day
    group by 1, d.product_id
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
      sum(r.cogs_wac) as cogs_wac,
      sum(r.cogs_fifo) as cogs_fifo,
      sum(r.order_lines) as order_lines
    from facts as r
    inner join by_key as k on r.key = k.key
    group by r.period, 2, 3
    union all
    select t.period, t.key, true, t.units, t.revenue, t.cogs_wac, t.cogs_fifo, t.order_lines
    from top_facts as t
    union all
    -- Pruned: every other product of a period, as the period's totals minus its top 25.
    select
      a.period,
      null,
      false,
      a.units - coalesce(n.units, 0),
      a.revenue - coalesce(n.revenue, 0),
      a.cogs_wac - coalesce(n.cogs_wac, 0),
      a.cogs_fifo - coalesce(n.cogs_fifo, 0),
      a.order_lines - coalesce(n.order_lines, 0)
    from (
      select
        date_trunc(sales_analytics.granularity, d.day)::date as period,
        sum(d.units) as units,
        sum(d.revenue) as revenue,
        sum(d.cogs_wac) as cogs_wac,
        sum(d.cogs_fifo) as cogs_fifo,
        sum(d.order_lines) as order_lines,
        sum(d.facts) as facts
      from private.location_daily_sales as d
      where pruned and d.organization_id = org and d.day between first_day and last_day
      group by 1
    ) as a
    left join (
      select
        t.period,
        sum(t.units) as units,
        sum(t.revenue) as revenue,
        sum(t.cogs_wac) as cogs_wac,
        sum(t.cogs_fifo) as cogs_fifo,
        sum(t.order_lines) as order_lines,
        sum(t.facts) as facts
      from top_facts as t
      group by t.period
    ) as n on a.period = n.period
    where a.facts > coalesce(n.facts, 0)
  )

  select jsonb_build_object(
    'as_of', section -> 'as_of',
    'sections', jsonb_build_object('sales', section),
    'timezone', zone,
    'organization_id', org,
    'from', first_day,
    'to', last_day,
    'granularity', sales_analytics.granularity,
    'group_by', sales_analytics.group_by,
    'costing_method', costing,
    'totals', (
      select jsonb_build_object(
        'units', coalesce(sum(s.units), 0),
        'revenue', round(coalesce(sum(s.revenue), 0), 2),
        'cogs', round(coalesce(sum(
          case when costing = 'fifo' then s.cogs_fifo else s.cogs_wac end
        ), 0), 2),
        'gross_margin', round(coalesce(sum(s.revenue) - sum(
          case when costing = 'fifo' then s.cogs_fifo else s.cogs_wac end
        ), 0), 2),
        'cogs_wac', round(coalesce(sum(s.cogs_wac), 0), 2),
        'cogs_fifo', round(coalesce(sum(s.cogs_fifo), 0), 2),
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
        'cogs', round(case when costing = 'fifo' then s.cogs_fifo else s.cogs_wac end, 2),
        'cogs_wac', round(s.cogs_wac, 2),
        'cogs_fifo', round(s.cogs_fifo, 2),
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

from / to: inclusive days of completion in the organization''s time zone (setting timezone, else
UTC; default: the 30 days to today there; at most 1100 days). granularity: day, week (ISO, from
Monday) or month of those days. group_by: none, product, category (the product''s own category)
or location. Returns as_of, costing_method (the organization setting costing_method, default
weighted_average), sections (sales: as_of the last refresh of the views read,
private.analytics_section), timezone, totals (units, revenue, cogs and gross_margin = revenue -
cogs by that method, cogs_wac, cogs_fifo, order_lines = order x product pairs), groups (the 25
keys with the most revenue, with a label) and series rows (period, key, units, revenue, cogs,
cogs_wac, cogs_fifo, order_lines). Units and revenue are those of sales orders fulfilled (or
closed short) in the period, gross of returns; cost of goods sold is a ledger fact
(private.daily_sales): what the orders'' sale movements took out of stock at moving
weighted-average cost (cogs_wac) and at FIFO cost (cogs_fifo), less the value of customer
returns in the period; orders fulfilled before costing existed use their lines'' unit_cost. Keys
outside the top 25 are summed into rows with key null and other = true. Reads the coarsest
analytics view the grouping allows (private.location_daily_sales for none and location,
private.category_daily_sales for category, with the categories as of the refresh,
private.daily_sales for product, ranking only the products whose revenue bound in
private.product_sales_stats can reach the top 25), security definer, filtered to
private.active_organization(organization_id). Bad arguments: PT400 validation_failed.';

revoke all on function public.sales_analytics(date, date, text, text, uuid) from public, anon;

grant execute on function public.sales_analytics(date, date, text, text, uuid) to authenticated;
