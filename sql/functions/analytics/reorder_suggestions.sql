create or replace function public.reorder_suggestions(
  organization_id uuid default null,
  location_id uuid default null,
  supplier_id uuid default null,
  line_limit integer default 500
)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(reorder_suggestions.organization_id);
  -- Stock, demand and forecasts as of the refresh; what is ordered, the rules and terms live.
  snapshot jsonb := private.analytics_section(
    array['private.reorder_inputs'],
    array[
      'on_hand', 'reserved', 'mean_daily_demand', 'sigma_daily_demand', 'forecast_method',
      'forecast_daily_demand', 'forecast_error_sigma'
    ]
  );
  window_days constant int := 90;
  cover_days constant int := 30;
  service_level double precision;
  z double precision;
  line_count integer;
  covered jsonb;
  result jsonb;
begin
  if reorder_suggestions.line_limit is null
    or reorder_suggestions.line_limit not between 1 and 10000 then
    raise sqlstate 'PT400' using
      message = 'line_limit must be between 1 and 10000',
      detail = coalesce(reorder_suggestions.line_limit::text, 'null'),
      hint = 'validation_failed';
  end if;
  select coalesce((s.value ->> 'service_level')::double precision, 0.95) into service_level
  from (select 1) as one
  left join public.settings as s on s.organization_id = org;
  z := private.inverse_normal_cdf(service_level);

  -- Built as json (text) and cast once: jsonb would sort the keys of every line as it goes.
  -- The most urgent lines first (fewest days of demand covered) when there are more than
  -- line_limit.
  with
  urgent as (
    -- The most urgent lines; replenishment_lines reads at most line_limit of those without
    -- open purchase orders, in index order.
    select l.*
    from private.replenishment_lines(
      org, z,
      case
        when reorder_suggestions.location_id is null and reorder_suggestions.supplier_id is null
          then reorder_suggestions.line_limit
      end
    ) as l
    where
      not l.covered_by_draft
      and (reorder_suggestions.location_id is null or l.location_id = reorder_suggestions.location_id)
      and (
        reorder_suggestions.supplier_id is null or l.supplier_id = reorder_suggestions.supplier_id
      )
    order by
      l.available / nullif(l.daily_demand, 0) nulls last,
      l.sku,
      l.location_id
    limit reorder_suggestions.line_limit
  ),

  lines as (
    -- The supplier's terms, for the lines kept only.
    select
      u.*,
      coalesce(sp.minimum_order_quantity, 0) as minimum_order_quantity,
      coalesce(sp.pack_size, 1) as pack_size,
      coalesce(sp.unit_cost, u.unit_cost) as price,
      private.replenishment_quantity(
        u.available, u.reorder_point, u.order_up_to, sp.minimum_order_quantity, sp.pack_size
      ) as quantity
    from urgent as u
    left join public.supplier_products as sp
      on u.product_id = sp.product_id and u.supplier_id = sp.supplier_id
  ),

  proposals as (
    select json_build_object(
      'supplier_id', s.id,
      'supplier_name', s.name,
      'location_id', loc.id,
      'location_name', loc.name,
      'lead_time_days', s.lead_time_days,
      'currency', s.currency,
      'status', 'draft',
      'total_cost', round(sum(l.quantity * l.price), 2),
      'lines', json_agg(json_build_object(
        'product_id', l.product_id,
        'sku', l.sku,
        'name', l.name,
        'rule', l.rule,
        'on_hand', l.on_hand,
        'reserved', l.reserved,
        'on_order', l.on_order,
        'incoming_draft', l.incoming_draft,
        'available', round(l.available::numeric, 3),
        'mean_daily_demand', round(l.mean::numeric, 4),
        'sigma_daily_demand', round(l.sigma::numeric, 4),
        'forecast_method', l.forecast_method,
        'forecast_daily_demand', round(l.daily_demand::numeric, 4),
        'forecast_error_sigma', round(l.error_sigma::numeric, 4),
        'lead_time_days', l.lead_time_days,
        'reorder_point', round(l.reorder_point::numeric, 3),
        'order_up_to', round(l.order_up_to::numeric, 3),
        'minimum_order_quantity', l.minimum_order_quantity,
        'pack_size', l.pack_size,
        'suggested_quantity', l.quantity,
        'unit_cost', l.price
      ) order by l.sku)
    ) as po
    from lines as l
    inner join public.suppliers as s on l.supplier_id = s.id
    inner join public.locations as loc on l.location_id = loc.id
    group by s.id, loc.id
  )

  select
    (
      -- Lines = the rows at or below their point by the refresh (z_threshold <= z, an index
      -- range) where no rule decides and no purchase order is open, plus the lines among the
      -- others (replenishment_lines with first_lines 0 returns only those).
      select count(*)
      from private.reorder_inputs as x
      where
        x.organization_id = org
        and x.z_threshold <= z
        and (reorder_suggestions.location_id is null or x.location_id = reorder_suggestions.location_id)
        and (
          reorder_suggestions.supplier_id is null or x.supplier_id = reorder_suggestions.supplier_id
        )
        and not exists (
          select from public.reorder_rules as r
          where
            r.organization_id = org
            and r.product_id = x.product_id and r.location_id = x.location_id
        )
        and (x.product_id, x.location_id) not in (
          -- Hashed once (a correlated form would aggregate the open orders per row).
          select
            i.product_id,
            i.location_id
          from private.replenishment_incoming(org) as i
        )
    ) + (
      select count(*)
      from private.replenishment_lines(org, z, 0) as n
      where
        not n.covered_by_draft
        and (reorder_suggestions.location_id is null or n.location_id = reorder_suggestions.location_id)
        and (
          reorder_suggestions.supplier_id is null or n.supplier_id = reorder_suggestions.supplier_id
        )
    ),
    (
      -- Needs that draft purchase orders already cover: confirm the drafts, do not reorder.
      select jsonb_build_object(
        'count', count(*),
        'lines', coalesce(jsonb_agg(jsonb_build_object(
          'product_id', c.product_id,
          'location_id', c.location_id,
          'sku', c.sku,
          'incoming_draft', c.incoming_draft,
          'available', round(c.available::numeric, 3),
          'reorder_point', round(c.reorder_point::numeric, 3)
        ) order by c.sku, c.location_id) filter (where c.covered_no <= reorder_suggestions.line_limit),
        '[]'::jsonb)
      )
      from (
        select n.*, row_number() over (order by n.sku, n.location_id) as covered_no
        from private.replenishment_lines(org, z, 0) as n
        where
          n.covered_by_draft
          and (
            reorder_suggestions.location_id is null
            or n.location_id = reorder_suggestions.location_id
          )
          and (
            reorder_suggestions.supplier_id is null
            or n.supplier_id = reorder_suggestions.supplier_id
          )
      ) as c
    ),
    (
      select coalesce(
        json_agg(p.po order by p.po ->> 'supplier_name', p.po ->> 'location_name'), '[]'::json
      )::jsonb
      from proposals as p
    )
  into line_count, covered, result;

  return jsonb_build_object(
    'as_of', snapshot -> 'as_of',
    'sections', jsonb_build_object(
      'stock_and_demand', snapshot,
      'orders_and_rules', private.analytics_section(
        null,
        array[
          'service_level', 'z', 'on_order', 'incoming_draft', 'covered_by_drafts', 'rule',
          'reorder_point', 'order_up_to', 'lead_time_days', 'minimum_order_quantity',
          'pack_size', 'suggested_quantity', 'unit_cost'
        ]
      )
    ),
    'organization_id', org,
    'service_level', service_level,
    'z', round(z::numeric, 6),
    'demand_window_days', window_days,
    'cover_days', cover_days,
    'line_count', line_count,
    'truncated', line_count > reorder_suggestions.line_limit,
    'covered_count', (covered ->> 'count')::integer,
    'covered_by_drafts', covered -> 'lines',
    'purchase_orders', result
  );
end
$$;

comment on function public.reorder_suggestions(uuid, uuid, uuid, integer) is
'Draft purchase orders to place, one per supplier and location, for what is at or below its
reorder point there.

Per product and location (private.replenishment_lines): the reorder point is the location''s
reorder rule (public.reorder_rules: min_quantity of a min/max, or reorder_point), else the
product''s reorder_point, else forecast demand over the lead time L plus safety stock: daily
forecast * L + max(z * error_sigma * sqrt(L), safety_stock), the forecast and the standard
deviation of its own hold-out error from private.demand_forecasts (the 90-day mean and sigma
where none is fitted), L the preferred supplier''s lead time for the product, z the standard
normal quantile of settings service_level (default 0.95 -> 1.645). available = on hand -
reserved + on_order (what confirmed and partially received purchase orders still bring) +
incoming_draft (draft purchase orders, flagged per line). A line is proposed when available <=
reorder point, for the rule''s max_quantity (else the point + 30 days of forecast) - available,
at least enough to lift available above the point and the supplier''s minimum_order_quantity,
rounded up to its pack_size (private.replenishment_quantity); a need that draft orders already
cover is listed in covered_by_drafts instead (covered_count of them, the first line_limit by
sku). Lines carry the preferred supplier''s unit_cost (public.supplier_products, else the
catalog cost).

location_id / supplier_id narrow the answer; line_limit (1..10000, default 500, else PT400)
keeps the most urgent lines (fewest days of forecast demand covered); line_count counts them all
and truncated says whether some were left out. Demand, forecasts, stock, the products'' reorder
parameters and preferred suppliers are as of as_of (the last refresh, private.reorder_inputs);
rules, purchase orders, supplier terms and the service level are live: sections says which line
fields are which (stock_and_demand as_of, orders_and_rules live; private.analytics_section).
Security definer to read the views; filtered to private.active_organization(organization_id).';

revoke all on function public.reorder_suggestions(uuid, uuid, uuid, integer) from public, anon;

grant execute on function public.reorder_suggestions(uuid, uuid, uuid, integer) to authenticated;
