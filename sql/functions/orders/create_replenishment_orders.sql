create or replace function public.create_replenishment_orders(
  organization_id uuid default null,
  idempotency_key text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  request_hash text := encode(sha256(convert_to('create_replenishment_orders', 'UTF8')), 'hex');
  stored record;
  service_level double precision;
  z double precision;
  batch record;
  orders jsonb := '[]'::jsonb;
  response jsonb;
begin
  org := private.active_organization(create_replenishment_orders.organization_id);
  if not private.has_role(org, 'manager') then
    raise sqlstate 'PT403' using
      message = 'your role may not create purchase orders',
      detail = org::text,
      hint = 'forbidden';
  end if;

  -- One replenishment run per organization at a time: a second one waits, then sees the drafts
  -- of the first as incoming and creates nothing for what they cover.
  perform pg_advisory_xact_lock(hashtextextended('create_replenishment_orders:' || org::text, 0));
  if create_replenishment_orders.idempotency_key is not null then
    select k.request_hash, k.user_id, k.response
    into stored
    from public.idempotency_keys as k
    where k.organization_id = org and k.key = create_replenishment_orders.idempotency_key;
    if found then
      if stored.request_hash = request_hash and stored.user_id = auth.uid() then
        return stored.response || jsonb_build_object('replayed', true);
      end if;
      raise sqlstate 'PT422' using
        message = 'idempotency key reused with a different request',
        detail = create_replenishment_orders.idempotency_key,
        hint = 'idempotency_conflict';
    end if;
  end if;

  select coalesce((s.value ->> 'service_level')::double precision, 0.95) into service_level
  from (select 1) as one
  left join public.settings as s on s.organization_id = org;
  z := private.inverse_normal_cdf(service_level);

  -- One draft purchase order per supplier and location, through create_order (numbering,
  -- validation, currency), its lines at the supplier's price (2 decimals) or the catalog cost.
  for batch in
    select
      l.supplier_id,
      l.location_id,
      jsonb_agg(
        jsonb_strip_nulls(jsonb_build_object(
          'product_id', l.product_id,
          'quantity', private.replenishment_quantity(
            l.available, l.reorder_point, l.order_up_to, sp.minimum_order_quantity,
            sp.pack_size
          ),
          'unit_price', round(sp.unit_cost, 2)
        )) order by l.sku
      ) as items
    from private.replenishment_lines(org, z) as l
    inner join public.locations as loc on l.location_id = loc.id
    left join public.supplier_products as sp
      on l.product_id = sp.product_id and l.supplier_id = sp.supplier_id
    where not l.covered_by_draft and loc.active
    group by l.supplier_id, l.location_id
    order by l.supplier_id, l.location_id
  loop
    orders := orders || public.create_order(
      kind => 'purchase',
      location_id => batch.location_id,
      items => batch.items,
      supplier_id => batch.supplier_id,
      notes => 'Replenishment: suggested by reorder_suggestions',
      organization_id => org,
      status => 'draft'
    );
  end loop;

  response := jsonb_build_object(
    'organization_id', org,
    'created', jsonb_array_length(orders),
    'orders', orders,
    'replayed', false
  );
  if create_replenishment_orders.idempotency_key is not null then
    insert into public.idempotency_keys (organization_id, key, user_id, request_hash, response)
    values (
      org, create_replenishment_orders.idempotency_key, auth.uid(), request_hash,
      response - 'replayed'
    );
  end if;
  return response;
end
$$;

comment on function public.create_replenishment_orders(uuid, text) is
'Turns the reorder suggestions into draft purchase orders, one per supplier and location.

Takes every line private.replenishment_lines proposes for the organization (the same lines as
reorder_suggestions, without its line limit) at active locations and creates each order with
create_order (status draft, the preferred supplier''s price rounded to cents, else the catalog
cost). Returns {organization_id, created, orders: [order JSON], replayed}. Idempotent: drafts
count as incoming stock, so a second call creates nothing for what the first covered (runs of
one organization are serialised by an advisory lock); under an idempotency_key the first answer
is stored and the same key returns it again with replayed = true (another request under that
key: PT422 idempotency_conflict). Needs manager (PT403 forbidden). Security definer because
clients may not write orders, order items or idempotency keys, and the suggestions read
materialized views in private; it checks the caller''s organization and role itself.';

revoke all on function public.create_replenishment_orders(uuid, text) from public, anon;

grant execute on function public.create_replenishment_orders(uuid, text)
to authenticated, service_role;
