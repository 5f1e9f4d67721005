create or replace function public.create_order(
  kind text,
  location_id uuid,
  items jsonb,
  supplier_id uuid default null,
  customer_name text default null,
  notes text default null,
  idempotency_key text default null,
  organization_id uuid default null,
  status text default 'confirmed'
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  request jsonb;
  request_hash text;
  stored record;
  supplier_currency text;
  line record;
  lines jsonb;
  order_number bigint;
  new_order_id uuid;
  order_currency text;
  response jsonb;
begin
  org := private.active_organization(create_order.organization_id);
  if create_order.kind is null or create_order.kind not in ('sales', 'purchase') then
    raise sqlstate 'PT422' using
      message = 'kind must be sales or purchase',
      detail = coalesce(create_order.kind, 'null'),
      hint = 'validation_failed';
  end if;
  if not private.has_role(
    org, case when create_order.kind = 'sales' then 'staff' else 'manager' end
  ) then
    raise sqlstate 'PT403' using
      message = format('your role may not create %s orders', create_order.kind),
      detail = org::text,
      hint = 'forbidden';
  end if;
  if coalesce(create_order.status, '') not in ('draft', 'confirmed') then
    raise sqlstate 'PT422' using
      message = 'a new order is draft or confirmed',
      detail = coalesce(create_order.status, 'null'),
      hint = 'validation_failed';
  end if;
  if jsonb_typeof(create_order.items) is distinct from 'array'
    or jsonb_array_length(create_order.items) = 0 then
    raise sqlstate 'PT422' using
      message = 'items must be a non-empty array',
      hint = 'validation_failed';
  end if;

  -- Idempotency-Key (IETF draft): one transaction per key and organization at a time.
  if create_order.idempotency_key is not null then
    request := jsonb_build_object(
      'kind', create_order.kind,
      'location_id', create_order.location_id,
      'items', create_order.items,
      'supplier_id', create_order.supplier_id,
      'customer_name', create_order.customer_name,
      'notes', create_order.notes,
      'status', create_order.status
    );
    request_hash := encode(sha256(convert_to(request::text, 'UTF8')), 'hex');
    perform pg_advisory_xact_lock(
      hashtextextended('create_order:' || org::text || ':' || create_order.idempotency_key, 0)
    );
    select k.request_hash, k.user_id, k.response
    into stored
    from public.idempotency_keys as k
    where k.organization_id = org and k.key = create_order.idempotency_key;
    if found then
      if stored.request_hash = request_hash and stored.user_id = auth.uid() then
        -- A replay says so (as Stripe's Idempotent-Replayed): PostgREST sends this header.
        perform set_config('response.headers', '[{"Idempotent-Replayed": "true"}]', true);
        return stored.response;
      end if;
      raise sqlstate 'PT422' using
        message = 'idempotency key reused with a different request',
        detail = create_order.idempotency_key,
        hint = 'idempotency_conflict';
    end if;
  end if;

  supplier_currency := private.order_place(org, create_order.location_id, create_order.supplier_id);

  -- Validated and priced as update_draft_order's lines are: private.order_lines raises on a
  -- malformed, repeated, unknown or (for sales) inactive product. Kept as jsonb (a temporary
  -- table would add and drop catalog rows with every order).
  lines := (
    select jsonb_agg(to_jsonb(x) order by x.line_no)
    from private.order_lines(org, create_order.kind, create_order.items) as x
  );

  if create_order.kind = 'sales' and create_order.status = 'confirmed' then
    perform private.reserve_check(create_order.location_id, lines);
  end if;

  insert into private.order_numbers as n (organization_id, last_number)
  values (org, 1)
  on conflict on constraint order_numbers_pkey do update set last_number = n.last_number + 1
  returning n.last_number into order_number;

  order_currency := coalesce(
    supplier_currency,
    (select st.value ->> 'currency' from public.settings as st where st.organization_id = org),
    'USD'
  );

  insert into public.orders as o (
    organization_id, kind, status, number, supplier_id, location_id, customer_name, notes,
    currency, created_by, confirmed_at
  )
  values (
    org, create_order.kind, create_order.status, order_number, create_order.supplier_id,
    create_order.location_id, create_order.customer_name, create_order.notes, order_currency, auth.uid(),
    case when create_order.status = 'confirmed' then now() end
  )
  returning o.id into new_order_id;

  insert into public.order_items (organization_id, order_id, product_id, line_no, quantity,
    unit_price)
  select org, new_order_id, t.product_id, t.line_no, t.quantity, t.unit_price
  from jsonb_to_recordset(lines) as t (
    line_no integer, product_id uuid, quantity numeric, unit_price numeric
  );

  if create_order.kind = 'sales' and create_order.status = 'confirmed' then
    for line in
      select t.product_id, t.quantity
      from jsonb_to_recordset(lines) as t (product_id uuid, quantity numeric)
      order by t.product_id
    loop
      perform private.set_reserved(line.product_id, create_order.location_id, line.quantity);
    end loop;
  end if;

  response := private.order_json(new_order_id);
  if create_order.idempotency_key is not null then
    insert into public.idempotency_keys (
      organization_id, key, user_id, request_hash, order_id, response
    )
    values (org, create_order.idempotency_key, auth.uid(), request_hash, new_order_id, response);
  end if;
  return response;
end
$$;

comment on function public.create_order(text, uuid, jsonb, uuid, text, text, text, uuid, text) is
'Creates a sales or purchase order with its items in one transaction; returns it as JSON.

items: [{product_id, quantity, unit_price?}] (unit_price defaults to the product price for
sales, its unit cost for purchases). status: confirmed (default; a sales order reserves its
stock) or draft. organization_id defaults to the caller''s active organization. Sales need
staff, purchases manager. Stock rows are locked in (product_id, location_id) order, so
concurrent orders cannot deadlock; a sales order that any line cannot meet fails with PT409
insufficient_stock naming the products, and writes nothing. Under an idempotency_key the
first result is stored in the same transaction; the same key and request returns it again (with the
response header Idempotent-Replayed: true),
the same key with a different request fails with PT422 idempotency_conflict. Other errors:
PT403 forbidden, PT404 not_found (location, supplier, product of another organization),
PT422 validation_failed. Security definer because clients may not write orders, stock or
idempotency keys directly; it checks the caller''s organization and role itself.';

revoke all on function public.create_order(text, uuid, jsonb, uuid, text, text, text, uuid, text)
from public, anon;

grant execute on function public.create_order(
  text, uuid, jsonb, uuid, text, text, text, uuid, text
) to authenticated, service_role;
