create or replace function public.stock_valuation(
  method text default 'weighted_average',
  organization_id uuid default null
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(stock_valuation.organization_id);
  result jsonb;
begin
  if method is null or method not in ('weighted_average', 'fifo') then
    raise sqlstate 'PT400' using
      message = 'method must be weighted_average or fifo',
      detail = coalesce(method, 'null'),
      hint = 'validation_failed';
  end if;

  if method = 'weighted_average' then
    -- As of the refresh: the per-category and per-location totals are precomputed.
    select jsonb_build_object(
      'as_of', (select min(a.refreshed_at) from private.analytics_refreshes as a),
      'units', coalesce(sum(g.units), 0),
      'value', round(coalesce(sum(g.value), 0), 2),
      'by_category', coalesce(jsonb_agg(jsonb_build_object(
        'category_id', nullif(g.key, '00000000-0000-0000-0000-000000000000'::uuid),
        'name', coalesce(cat.name, 'uncategorized'),
        'units', g.units,
        'value', round(g.value, 2)
      ) order by g.value desc), '[]'::jsonb),
      'by_location', coalesce((
        select jsonb_agg(jsonb_build_object(
          'location_id', x.key,
          'code', loc.code,
          'name', loc.name,
          'units', x.units,
          'value', round(x.value, 2)
        ) order by loc.code)
        from private.stock_by_group as x
        inner join public.locations as loc on x.key = loc.id
        where x.organization_id = org and x.dimension = 'location'
      ), '[]'::jsonb)
    )
    into result
    from private.stock_by_group as g
    left join public.categories as cat on g.key = cat.id
    where g.organization_id = org and g.dimension = 'category';
    return result || jsonb_build_object(
      'organization_id', org,
      'method', method,
      'currency', coalesce((
        select s.value ->> 'currency' from public.settings as s where s.organization_id = org
      ), 'USD')
    );
  end if;

  -- fifo: live, from the ledger.
  with on_hand as (
    select l.product_id, sum(l.on_hand) as units
    from public.stock_levels as l
    where l.organization_id = org and l.on_hand > 0
    group by l.product_id
  ),

  -- FIFO: the units on hand are the latest receipts; walk them newest first.
  receipts as (
    select
      m.product_id,
      m.quantity,
      coalesce(m.unit_cost, p.unit_cost) as cost,
      sum(m.quantity) over (
        partition by m.product_id order by m.created_at desc, m.id desc
      ) as through
    from public.stock_movements as m
    inner join public.products as p on m.product_id = p.id
    where m.organization_id = org and m.kind = 'receipt'
  ),

  fifo as (
    select
      o.product_id,
      coalesce(sum(least(r.quantity, o.units - (r.through - r.quantity)) * r.cost), 0)
      + greatest(o.units - coalesce(max(r.through), 0), 0) * max(p.unit_cost) as value
    from on_hand as o
    inner join public.products as p on o.product_id = p.id
    left join receipts as r
      on o.product_id = r.product_id and r.through - r.quantity < o.units
    group by o.product_id, o.units
  ),

  valued as (
    select
      o.product_id,
      p.category_id,
      o.units,
      f.value
    from on_hand as o
    inner join public.products as p on o.product_id = p.id
    left join fifo as f on o.product_id = f.product_id
  )

  select jsonb_build_object(
    'units', coalesce(sum(v.units), 0),
    'value', round(coalesce(sum(v.value), 0), 2),
    'by_category', coalesce((
      select jsonb_agg(jsonb_build_object(
        'category_id', c.category_id,
        'name', coalesce(cat.name, 'uncategorized'),
        'units', c.units,
        'value', round(c.value, 2)
      ) order by c.value desc)
      from (
        select v2.category_id, sum(v2.units) as units, sum(v2.value) as value
        from valued as v2
        group by v2.category_id
      ) as c
      left join public.categories as cat on c.category_id = cat.id
    ), '[]'::jsonb)
  )
  into result
  from valued as v;

  return result || jsonb_build_object(
    'as_of', now(),
    'organization_id', org,
    'method', method,
    'currency', coalesce((
      select s.value ->> 'currency' from public.settings as s where s.organization_id = org
    ), 'USD')
  );
end
$$;

comment on function public.stock_valuation(text, uuid) is
'Value of the stock on hand of the active organization, by category (and location).

method weighted_average (default): on hand * products.unit_cost, the weighted average cost
the stock functions maintain, with by_category and by_location, read from the analytics views
(private.stock_by_group), so as_of is the last refresh. method fifo: live (as_of = now), per
product the units on hand are taken as the latest receipts (newest first) at their movement
unit cost, any excess over all receipts at the current unit cost; by_category only (transfers
move units between locations, not layers). Returns as_of, method, currency, units, value,
by_category, by_location. Security definer so one scan serves members of every role; filtered to
private.active_organization(organization_id). Other methods: PT400 validation_failed.';

revoke all on function public.stock_valuation(text, uuid) from public, anon;

grant execute on function public.stock_valuation(text, uuid) to authenticated;
