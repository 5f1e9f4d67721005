create or replace function private.evaluate_low_stock(
  product_id uuid,
  location_id uuid default null,
  organization_id uuid default null
)
returns integer
language plpgsql
volatile
security invoker
set search_path = ''
-- Every stock write evaluates its level here: planned once per session, not per call (a plan
-- made for the values at hand cost ~0.35 ms a call, three times the statement's run). The
-- generic plan reads the products' levels by key; an organization's every level is planned
-- for the call (below).
set plan_cache_mode = force_generic_plan
as $$
declare
  alerted integer;
  today date;
  scope uuid[];
begin
  if num_nulls(
    evaluate_low_stock.product_id, evaluate_low_stock.organization_id
  ) = 2 then
    raise sqlstate 'PT422' using
      message = 'evaluate_low_stock needs a product_id or an organization_id',
      hint = 'validation_failed';
  end if;
  -- Everything in scope is one organization's (a product's, or the one named): its date
  -- judges lot expiry.
  today := private.organization_today(coalesce(
    evaluate_low_stock.organization_id,
    (select p.organization_id from public.products as p where p.id = evaluate_low_stock.product_id)
  ));
  if evaluate_low_stock.product_id is not null then
    scope := array[evaluate_low_stock.product_id];
  else
    -- Every product of the organization: planned for this call (hash joins over its levels;
    -- the generic plan's lookups by key took 1.5x as long for 70,000 products).
    perform set_config('plan_cache_mode', 'force_custom_plan', true);
    scope := array(
      select p.id from public.products as p
      where p.organization_id = evaluate_low_stock.organization_id
    );
  end if;
  -- One statement for every stock level in scope: judge (the rules of
  -- private.available_quantity and private.low_stock_threshold, inlined so that an
  -- organization-wide evaluation stays one set-based pass), record the verdicts that changed
  -- (state rows locked in key order), alert those that turned low, NOTIFY each alert.
  with
  judged as (
    select
      s.organization_id,
      s.product_id,
      s.location_id,
      s.on_hand,
      s.reserved,
      s.on_hand - s.reserved - coalesce(u.quantity, 0) as available,
      coalesce(
        p.low_stock_threshold, (st.value ->> 'default_low_stock_threshold')::integer, 10
      ) as threshold,
      p.active and p.archived_at is null as alerting
    from public.stock_levels as s
    inner join public.products as p on s.product_id = p.id
    left join public.settings as st on s.organization_id = st.organization_id
    left join lateral (
      select sum(l.quantity) as quantity
      from public.lots as l
      where
        l.product_id = s.product_id
        and l.location_id = s.location_id
        and l.quantity > 0
        and not private.lot_usable(l.status, l.expiry_date, today)
    ) as u on true
    where
      s.product_id = any(scope)
      and (
        evaluate_low_stock.location_id is null
        or s.location_id = evaluate_low_stock.location_id
      )
      and (
        evaluate_low_stock.organization_id is null
        or s.organization_id = evaluate_low_stock.organization_id
      )
  ),

  turned as (
    insert into private.low_stock_states as st (product_id, location_id, organization_id, low)
    select
      j.product_id,
      j.location_id,
      j.organization_id,
      j.alerting and j.available <= j.threshold
    from judged as j
    -- Unchanged verdicts are not written (nor their rows locked); the upsert's WHERE decides
    -- between concurrent evaluations.
    where not exists (
      select
      from private.low_stock_states as o
      where
        o.product_id = j.product_id
        and o.location_id = j.location_id
        and o.low = (j.alerting and j.available <= j.threshold)
    )
    order by j.product_id, j.location_id
    on conflict on constraint low_stock_states_pkey do update
    set low = excluded.low, since = now()
    where st.low is distinct from excluded.low
    returning st.product_id, st.location_id, st.low
  ),

  alerts as (
    insert into public.notifications as n (organization_id, kind, payload)
    select
      j.organization_id,
      'low_stock',
      jsonb_build_object(
        'product_id', j.product_id,
        'location_id', j.location_id,
        'on_hand', j.on_hand,
        'reserved', j.reserved,
        'available', j.available,
        'threshold', j.threshold
      )
    from turned as t
    inner join judged as j on t.product_id = j.product_id and t.location_id = j.location_id
    where t.low
    order by j.organization_id, j.product_id, j.location_id
    returning n.id, n.organization_id, n.kind, n.payload
  )

  select count(pg_notify('nimbus_events', jsonb_build_object(
    'id', a.id,
    'organization_id', a.organization_id,
    'kind', a.kind,
    'payload', a.payload
  )::text))::integer into alerted
  from alerts as a;
  return alerted;
end
$$;

comment on function private.evaluate_low_stock(uuid, uuid, uuid) is
'Re-judges stock levels for low stock; a low_stock alert for each one that turned low.

Scope: a product''s levels (at one location when location_id is given), or every level of an
organization (organization_id; e.g. when its default threshold changes). A level is low when
its product is active and not archived and its available quantity (on_hand - reserved -
stock in unusable lots: the rule of private.available_quantity, with private.lot_usable) is at
or below its threshold (the rule of private.low_stock_threshold); both are inlined so that an
organization-wide evaluation is one set-based pass. The verdict is kept in
private.low_stock_states: a level that turns low (from high, or a new level that starts low)
gets one notification (payload: product_id, location_id, on_hand, reserved, available,
threshold) and a NOTIFY on nimbus_events; staying low is silent; rising above (or the product
becoming inactive) re-arms it. Concurrent evaluations of one level serialize on its state row,
so a crossing alerts once. Returns the number of alerts. Security invoker: called by the
security definer trigger function private.low_stock_event.';

revoke all on function private.evaluate_low_stock(uuid, uuid, uuid)
from public, anon, authenticated;
