create or replace function public.bulk_upsert_products(
  rows jsonb,
  mode text default 'insert',
  organization_id uuid default null,
  dry_run boolean default false
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  org uuid;
  problems jsonb;
  all_missing boolean;
  all_taken boolean;
  total int;
  existing int;
  written int;
  result jsonb;
  by_id jsonb;
  by_id_count int;
begin
  org := private.active_organization(bulk_upsert_products.organization_id);
  if not private.has_role(org, 'manager') then
    raise sqlstate 'PT403' using
      message = 'your role may not change products',
      detail = org::text,
      hint = 'forbidden';
  end if;
  if bulk_upsert_products.mode is null
    or bulk_upsert_products.mode not in ('insert', 'upsert', 'update') then
    raise sqlstate 'PT422' using
      message = 'mode must be insert, upsert or update',
      detail = coalesce(bulk_upsert_products.mode, 'null'),
      hint = 'validation_failed';
  end if;
  if jsonb_typeof(bulk_upsert_products.rows) is distinct from 'array'
    or jsonb_array_length(bulk_upsert_products.rows) not between 1 and 10000
    or exists (
      select
      from jsonb_array_elements(bulk_upsert_products.rows) as e (v)
      where jsonb_typeof(e.v) <> 'object'
    ) then
    raise sqlstate 'PT422' using
      message = 'rows must be an array of 1 to 10000 objects',
      hint = 'validation_failed';
  end if;
  total := jsonb_array_length(bulk_upsert_products.rows);

  -- Every problem of every row, found set-wise before anything is written.
  with input as (
    select
      (e.ord - 1)::int as idx,
      e.v ->> 'sku' as sku,
      e.v ->> 'barcode' as barcode,
      (e.v ->> 'id')::uuid as id,
      (e.v ->> 'category_id')::uuid as category_id,
      (e.v ->> 'supplier_id')::uuid as supplier_id,
      e.v as doc
    from jsonb_array_elements(bulk_upsert_products.rows) with ordinality as e (v, ord)
  ),
  marked as (
    select
      i.*,
      min(i.idx) over (partition by i.sku) as first_sku,
      min(i.idx) over (partition by i.barcode) as first_barcode,
      min(i.idx) over (partition by i.id) as first_id
    from input as i
  ),
  found as (
    select m.idx, 'sku' as field, 'required' as message, 'missing' as kind
    from marked as m
    where bulk_upsert_products.mode <> 'update' and m.sku is null
    union all
    select m.idx, 'sku', format('repeats row %s of this request', m.first_sku), 'duplicate'
    from marked as m
    where bulk_upsert_products.mode <> 'update' and m.sku is not null and m.idx > m.first_sku
    union all
    select m.idx, 'sku', 'already exists', 'unique'
    from marked as m
    where
      bulk_upsert_products.mode = 'insert'
      and exists (
        select from public.products as p where p.organization_id = org and p.sku = m.sku
      )
    union all
    -- upsert by id: the sku may change, but not to one another product has.
    select m.idx, 'sku', 'already used by another product', 'unique'
    from marked as m
    where
      bulk_upsert_products.mode = 'upsert'
      and m.id is not null
      and exists (
        select from public.products as p
        where p.organization_id = org and p.sku = m.sku and p.id <> m.id
      )
    union all
    select m.idx, 'barcode', format('repeats row %s of this request', m.first_barcode),
      'duplicate'
    from marked as m
    where
      bulk_upsert_products.mode <> 'update'
      and m.barcode is not null
      and m.idx > m.first_barcode
    union all
    select m.idx, 'barcode', 'already used by product ' || p.sku, 'unique'
    from marked as m
    inner join public.products as p
      on
        p.organization_id = org
        and p.barcode = m.barcode
        and case when m.id is null then p.sku is distinct from m.sku else p.id <> m.id end
    where bulk_upsert_products.mode <> 'update'
    union all
    select m.idx, 'category_id', 'does not exist', 'not_found'
    from marked as m
    where
      m.category_id is not null
      and not exists (
        select from public.categories as c
        where c.organization_id = org and c.id = m.category_id
      )
    union all
    select m.idx, 'supplier_id', 'does not exist', 'not_found'
    from marked as m
    where
      m.supplier_id is not null
      and not exists (
        select from public.suppliers as s
        where s.organization_id = org and s.id = m.supplier_id
      )
    union all
    -- Numbers: plain decimals (a JSON number or a numeric string, as CSV sends them), never
    -- NaN, Infinity, an exponent or more decimals than the column keeps (no silent rounding).
    select
      m.idx,
      k.key,
      format('must be a number >= 0 with at most %s decimal(s), below %s', k.places, k.top),
      'invalid'
    from marked as m
    -- Each column's own range (numeric(12, 2), numeric(14, 4), integer), as POST /products
    -- takes it: the export of any product imports back.
    cross join (
      values
      ('price', 2, 10000000000), ('unit_cost', 4, 10000000000),
      ('low_stock_threshold', 0, 2147483648), ('reorder_point', 0, 2147483648),
      ('safety_stock', 0, 2147483648)
    ) as k (key, places, top)
    where
      jsonb_typeof(m.doc -> k.key) in ('number', 'string', 'boolean', 'object', 'array')
      and not case
        when m.doc ->> k.key ~ '^[0-9]{1,10}([.][0-9]{1,20})?$'
          then
            (m.doc ->> k.key)::numeric = round((m.doc ->> k.key)::numeric, k.places)
            and (m.doc ->> k.key)::numeric < k.top
        else false
      end
    union all
    select m.idx, 'id', 'required', 'missing'
    from marked as m
    where bulk_upsert_products.mode = 'update' and m.id is null
    union all
    select m.idx, 'id', format('repeats row %s of this request', m.first_id), 'duplicate'
    from marked as m
    where bulk_upsert_products.mode <> 'insert' and m.id is not null and m.idx > m.first_id
    union all
    select m.idx, 'id', 'not found', 'not_found'
    from marked as m
    where
      bulk_upsert_products.mode <> 'insert'
      and m.id is not null
      and not exists (
        select from public.products as p where p.organization_id = org and p.id = m.id
      )
  ),
  per_row as (
    select
      f.idx,
      jsonb_agg(
        jsonb_build_object('field', f.field, 'message', f.message, 'type', f.kind)
        order by f.field, f.message
      ) as errors,
      bool_and(f.kind = 'not_found' and f.field = 'id') as missing,
      bool_and(f.kind = 'unique') as taken
    from found as f
    group by f.idx
  )
  select
    jsonb_agg(jsonb_build_object('index', r.idx, 'errors', r.errors) order by r.idx),
    bool_and(r.missing),
    bool_and(r.taken)
  into problems, all_missing, all_taken
  from per_row as r;

  if problems is not null then
    if all_missing then
      raise sqlstate 'PT404' using
        message = 'some products do not exist in this organization',
        detail = problems::text,
        hint = 'not_found';
    end if;
    if all_taken then
      raise sqlstate 'PT409' using
        message = 'some sku or barcode values are already used in this organization',
        detail = problems::text,
        hint = 'conflict';
    end if;
    raise sqlstate 'PT422' using
      message = format('%s of %s rows are invalid', jsonb_array_length(problems), total),
      detail = problems::text,
      hint = 'validation_failed';
  end if;

  -- Two index probes per row (an OR join condition would compare every row with every
  -- product of the organization: seconds for a chunk of 500 into 15k products).
  select count(*) into existing
  from jsonb_array_elements(bulk_upsert_products.rows) as e (v)
  where
    exists (
      select from public.products as p
      where p.organization_id = org and p.sku = e.v ->> 'sku'
    )
    or exists (
      select from public.products as p
      where p.organization_id = org and p.id = (e.v ->> 'id')::uuid
    );

  if bulk_upsert_products.dry_run then
    return jsonb_build_object(
      'created', total - existing, 'updated', existing, 'rows', '[]'::jsonb
    );
  end if;

  if bulk_upsert_products.mode = 'update' then
    with changes as (
      select (e.v ->> 'id')::uuid as id, e.v, e.ord
      from jsonb_array_elements(bulk_upsert_products.rows) with ordinality as e (v, ord)
    ),
    changed as (
      update public.products as p set
        price = case when c.v ? 'price' then (c.v ->> 'price')::numeric else p.price end,
        unit_cost = case
          when c.v ? 'unit_cost' then (c.v ->> 'unit_cost')::numeric else p.unit_cost
        end,
        low_stock_threshold = case
          when c.v ? 'low_stock_threshold' then (c.v ->> 'low_stock_threshold')::integer
          else p.low_stock_threshold
        end,
        reorder_point = case
          when c.v ? 'reorder_point' then (c.v ->> 'reorder_point')::integer
          else p.reorder_point
        end,
        safety_stock = case
          when c.v ? 'safety_stock' then (c.v ->> 'safety_stock')::integer
          else p.safety_stock
        end
      from changes as c
      where p.id = c.id and p.organization_id = org
      returning p.*
    )
    select jsonb_agg(to_jsonb(w) order by c.ord), count(*)
    into result, written
    from changed as w
    inner join changes as c on c.id = w.id;
  else
    -- upsert: the rows that carry an id replace that product (sku included); the others go by
    -- sku below. Joined on id alone (every id was found in org above): with organization_id =
    -- org beside it, the organization's row estimate, which lags while an import grows it, can
    -- make the planner loop over every product of the organization for each row (seconds a
    -- chunk of 500). Pairs {o: request position, r: row} merge both parts in request order.
    with input as (
      select e.ord, r.*
      from jsonb_array_elements(bulk_upsert_products.rows) with ordinality as e (v, ord)
      cross join lateral jsonb_populate_record(null::public.products, e.v) as r
      where bulk_upsert_products.mode = 'upsert' and r.id is not null
    ),
    replaced as (
      update public.products as p set
        sku = i.sku,
        name = i.name,
        barcode = i.barcode,
        description = i.description,
        unit = coalesce(i.unit, 'each'),
        price = coalesce(i.price, 0),
        unit_cost = coalesce(i.unit_cost, 0),
        reorder_point = i.reorder_point,
        safety_stock = coalesce(i.safety_stock, 0),
        low_stock_threshold = i.low_stock_threshold,
        category_id = i.category_id,
        supplier_id = i.supplier_id,
        active = coalesce(i.active, true),
        archived_at = case when coalesce(i.active, true) then null else p.archived_at end
      from input as i
      where p.id = i.id
      returning jsonb_build_object('o', i.ord, 'r', to_jsonb(p.*)) as pair
    )
    select jsonb_agg(w.pair), count(*)
    into by_id, by_id_count
    from replaced as w;

    with input as (
      select e.ord, r.*
      from jsonb_array_elements(bulk_upsert_products.rows) with ordinality as e (v, ord)
      cross join lateral jsonb_populate_record(null::public.products, e.v) as r
      where bulk_upsert_products.mode = 'insert' or r.id is null
    ),
    saved as (
      insert into public.products as p (
        organization_id, sku, name, barcode, description, unit, price, unit_cost,
        reorder_point, safety_stock, low_stock_threshold, category_id, supplier_id, active
      )
      select
        org, i.sku, i.name, i.barcode, i.description, coalesce(i.unit, 'each'),
        coalesce(i.price, 0), coalesce(i.unit_cost, 0), i.reorder_point,
        coalesce(i.safety_stock, 0), i.low_stock_threshold, i.category_id, i.supplier_id,
        coalesce(i.active, true)
      from input as i
      order by i.ord
      on conflict on constraint products_organization_id_sku_key do update set
        name = excluded.name,
        barcode = excluded.barcode,
        description = excluded.description,
        unit = excluded.unit,
        price = excluded.price,
        unit_cost = excluded.unit_cost,
        reorder_point = excluded.reorder_point,
        safety_stock = excluded.safety_stock,
        low_stock_threshold = excluded.low_stock_threshold,
        category_id = excluded.category_id,
        supplier_id = excluded.supplier_id,
        active = excluded.active,
        archived_at = case when excluded.active then null else p.archived_at end
      where bulk_upsert_products.mode = 'upsert'
      returning p.*
    )
    select jsonb_agg(jsonb_build_object('o', i.ord, 'r', to_jsonb(s))), count(*)
    into result, written
    from saved as s
    inner join input as i on i.sku = s.sku;

    written := written + by_id_count;
    select jsonb_agg(e.pair -> 'r' order by (e.pair ->> 'o')::int)
    into result
    from jsonb_array_elements(coalesce(result, '[]') || coalesce(by_id, '[]')) as e (pair);
  end if;

  if written <> total then
    -- A row appeared or vanished between the checks and the write (a concurrent request).
    raise sqlstate 'PT409' using
      message = 'products changed concurrently; nothing was written, retry',
      detail = format('%s of %s rows written', written, total),
      hint = 'conflict';
  end if;
  return jsonb_build_object(
    'created', total - existing, 'updated', existing, 'rows', coalesce(result, '[]'::jsonb)
  );
end
$$;

comment on function public.bulk_upsert_products(jsonb, text, uuid, boolean) is
'Writes many products of one organization in one transaction, all or nothing.

mode insert creates every row (an sku that exists is an error), upsert inserts or replaces by sku
(an archived product sent active is restored) or, for a row with an id, replaces that product of
the organization, sku included (an unknown id is not_found, an sku another product has is
unique), update changes price, unit_cost,
low_stock_threshold, reorder_point and safety_stock of the products named by id (keys left out
stay). Every row is checked before anything is written: repeated sku/barcode/id within the
request, sku or barcode already used, category/supplier/id not in the organization. Problems are
raised at once as PT422 validation_failed (PT404 not_found when only ids are unknown, PT409
conflict when only values already used) with detail
[{index, errors: [{field, message, type}]}], index counting from 0. dry_run checks only.
Returns {created, updated, rows} with rows in request order. Needs manager (PT403 forbidden).
Security invoker: RLS on products, categories and suppliers applies as well.';

revoke all on function public.bulk_upsert_products(jsonb, text, uuid, boolean)
from public, anon;

grant execute on function public.bulk_upsert_products(jsonb, text, uuid, boolean)
to authenticated, service_role;
