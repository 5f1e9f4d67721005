create or replace function private.replenishment_lines(
  organization_id uuid,
  z double precision,
  first_lines integer default null
)
returns table (
  product_id uuid,
  location_id uuid,
  supplier_id uuid,
  sku text,
  name text,
  rule text,
  on_hand numeric,
  reserved numeric,
  on_order numeric,
  incoming_draft numeric,
  available double precision,
  mean double precision,
  sigma double precision,
  forecast_method text,
  daily_demand double precision,
  error_sigma double precision,
  lead_time_days integer,
  reorder_point double precision,
  order_up_to double precision,
  unit_cost numeric,
  covered_by_draft boolean
)
language sql
stable
security invoker
as $$
  with
  incoming as (
    select
      i.product_id,
      i.location_id,
      i.on_order,
      i.draft,
      i.on_order::double precision as on_order_units,
      i.draft::double precision as draft_units
    from private.replenishment_incoming(replenishment_lines.organization_id) as i
  ),

  rules as (
    select r.product_id, r.location_id, r.min_quantity, r.max_quantity, r.reorder_point
    from public.reorder_rules as r
    where r.organization_id = replenishment_lines.organization_id
  ),

  -- Pairs are excluded with NOT IN (a hashed subplan, whatever the estimates: the planner
  -- cannot know how many purchase orders are open) rather than NOT EXISTS.
  candidates as (
    -- At or below the computed point at this z as of the refresh (z_threshold <= z, through
    -- its index: a need by definition), where no rule decides and no purchase order is open:
    -- all of them when first_lines is null, else the first_lines most urgent (fewest days of
    -- demand covered) in the order of an index (one of the two branches runs).
    select
      x.product_id, x.location_id, x.sku, x.name, x.supplier_id, x.lead_time_days,
        x.unit_cost, x.reorder_point::double precision as product_point, x.safety_stock, x.mean,
        x.sigma, x.forecast_method, x.daily_demand, x.error_sigma, x.on_hand, x.reserved, x.free,
      true as pre_need,
      0::numeric as on_order,
      0::numeric as draft,
      0::double precision as on_order_units,
      0::double precision as draft_units,
      null::numeric as min_quantity,
      null::numeric as max_quantity,
      null::numeric as rule_point
    from private.reorder_inputs as x
    where
      replenishment_lines.first_lines is null
      and x.organization_id = replenishment_lines.organization_id
      and x.z_threshold <= replenishment_lines.z
      and (x.product_id, x.location_id) not in (select r.product_id, r.location_id from rules as r)
      and (x.product_id, x.location_id) not in (
        select i.product_id, i.location_id from incoming as i
      )
    union all
    (
      select
        x.product_id, x.location_id, x.sku, x.name, x.supplier_id, x.lead_time_days,
        x.unit_cost, x.reorder_point::double precision, x.safety_stock, x.mean,
        x.sigma, x.forecast_method, x.daily_demand, x.error_sigma, x.on_hand, x.reserved, x.free,
        true, 0, 0, 0, 0, null, null, null
      from private.reorder_inputs as x
      where
        replenishment_lines.first_lines is not null
        and x.organization_id = replenishment_lines.organization_id
        and x.z_threshold <= replenishment_lines.z
        and (x.product_id, x.location_id) not in (
          select r.product_id, r.location_id from rules as r
        )
        and (x.product_id, x.location_id) not in (
          select i.product_id, i.location_id from incoming as i
        )
      order by x.urgency, x.sku, x.location_id
      limit replenishment_lines.first_lines
    )
    union all
    -- The same where purchase orders are open (they only raise what is available), all.
    select
      x.product_id, x.location_id, x.sku, x.name, x.supplier_id, x.lead_time_days,
        x.unit_cost, x.reorder_point::double precision, x.safety_stock, x.mean,
        x.sigma, x.forecast_method, x.daily_demand, x.error_sigma, x.on_hand, x.reserved, x.free,
      false, i.on_order, i.draft, i.on_order_units, i.draft_units, null, null, null
    from incoming as i
    inner join private.reorder_inputs as x
      on i.product_id = x.product_id and i.location_id = x.location_id
    where
      x.organization_id = replenishment_lines.organization_id
      and x.z_threshold <= replenishment_lines.z
      and (x.product_id, x.location_id) not in (select r.product_id, r.location_id from rules as r)
    union all
    -- Every rule: the refresh's figures where it saw the pair, else live stock and no demand.
    select
      p.id, r.location_id, p.sku, p.name,
      coalesce(x.supplier_id, sup.supplier_id),
      coalesce(x.lead_time_days, sup.lead_time_days),
      p.unit_cost, p.reorder_point, p.safety_stock,
      coalesce(x.mean, 0), coalesce(x.sigma, 0), x.forecast_method,
      coalesce(x.daily_demand, 0), coalesce(x.error_sigma, 0),
      coalesce(x.on_hand, l.on_hand, 0), coalesce(x.reserved, l.reserved, 0),
      coalesce(x.free, (l.on_hand - l.reserved)::double precision, 0),
      false,
      coalesce(i.on_order, 0), coalesce(i.draft, 0),
      coalesce(i.on_order_units, 0), coalesce(i.draft_units, 0),
      r.min_quantity, r.max_quantity, r.reorder_point
    from rules as r
    inner join public.products as p on r.product_id = p.id
    left join private.reorder_inputs as x
      on
        x.organization_id = replenishment_lines.organization_id
        and r.product_id = x.product_id and r.location_id = x.location_id
    left join public.stock_levels as l
      on r.product_id = l.product_id and r.location_id = l.location_id
    left join incoming as i on r.product_id = i.product_id and r.location_id = i.location_id
    left join lateral (
      select
        coalesce(sp.supplier_id, p.supplier_id) as supplier_id,
        coalesce(sp.lead_time_days, s.lead_time_days) as lead_time_days
      from (select 1) as one
      left join public.supplier_products as sp on p.id = sp.product_id
      inner join public.suppliers as s on coalesce(sp.supplier_id, p.supplier_id) = s.id
      where x.product_id is null
      order by
        sp.preferred desc nulls last,
        (sp.supplier_id = p.supplier_id) desc nulls last,
        coalesce(sp.unit_cost, p.unit_cost),
        s.id
      limit 1
    ) as sup on true
    where
      p.active and p.archived_at is null
      and coalesce(x.supplier_id, sup.supplier_id) is not null
  ),

  positions as (
    select
      c.product_id, c.location_id, c.sku, c.name, c.supplier_id, c.lead_time_days,
      c.unit_cost, c.mean, c.sigma, c.forecast_method, c.daily_demand, c.error_sigma,
      c.on_hand, c.reserved, c.pre_need, c.on_order, c.draft as incoming_draft, c.draft_units,
      c.free + c.on_order_units as confirmed_position,
      case
        when c.min_quantity is not null then 'min_max'
        when c.rule_point is not null then 'reorder_point'
        when c.product_point is not null then 'product_reorder_point'
        else 'forecast'
      end as rule,
      coalesce(
        coalesce(c.min_quantity, c.rule_point)::double precision,
        c.product_point,
        c.daily_demand * c.lead_time_days
        + greatest(
          replenishment_lines.z * c.error_sigma * sqrt(c.lead_time_days), c.safety_stock
        )
      ) as point,
      c.max_quantity::double precision as max_quantity
    from candidates as c
  )

  -- At or below the point on what is on hand and confirmed: a need, which drafts may cover.
  select
    p.product_id,
    p.location_id,
    p.supplier_id,
    p.sku,
    p.name,
    p.rule,
    p.on_hand,
    p.reserved,
    p.on_order,
    p.incoming_draft,
    p.confirmed_position + p.draft_units,
    p.mean,
    p.sigma,
    p.forecast_method,
    p.daily_demand,
    p.error_sigma,
    p.lead_time_days,
    p.point,
    coalesce(p.max_quantity, p.point + p.daily_demand * 30),
    p.unit_cost,
    not p.pre_need and p.confirmed_position + p.draft_units > p.point
  from positions as p
  where p.pre_need or p.confirmed_position <= p.point
$$;

comment on function private.replenishment_lines(uuid, double precision, integer) is
'What each product needs at each location of an organization: one row per product and location
at or below its reorder point on stock on hand and confirmed purchase orders.

Candidates: the rows of private.reorder_inputs (as of the refresh: stock, demand, forecast,
preferred supplier and its lead time L) whose z_threshold is at most z (without open purchase
orders: only the first_lines most urgent, fewest days of demand covered, when first_lines is
set), and, live, every reorder rule. on_order = what confirmed and partially received purchase
orders to the location still bring; incoming_draft = the quantities of its draft purchase orders; available = on hand -
reserved + on_order + incoming_draft. reorder_point = the rule''s (min_quantity of a min/max
rule, or reorder_point), else the product''s reorder_point, else daily forecast * L + max(z *
error_sigma * sqrt(L), safety_stock); a row is returned when available without the drafts is at
or below it, with covered_by_draft when the drafts lift available above it. order_up_to = the
rule''s max_quantity, else the point + 30 days of forecast; the quantity is
private.replenishment_quantity with the supplier''s terms, computed by the callers for the lines
they keep. Security invoker: its callers are definer functions that checked the caller''s
organization. No search_path clause, so that the planner inlines it into its callers'' queries
(a SET clause prevents that); every name in it is schema-qualified.';

revoke all on function private.replenishment_lines(uuid, double precision, integer)
from public, anon, authenticated;
