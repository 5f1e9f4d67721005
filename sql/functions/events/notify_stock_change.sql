create or replace function private.notify_stock_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  products uuid[];
  places jsonb;
  organizations uuid[];
  payload jsonb;
begin
  -- At most 101 distinct products: more than 100 is reported as a change of the whole table.
  if tg_op = 'INSERT' then
    select array_agg(p.product_id) into products
    from (select distinct n.product_id from new_rows as n limit 101) as p;
  elsif tg_op = 'DELETE' then
    select array_agg(p.product_id) into products
    from (select distinct o.product_id from old_rows as o limit 101) as p;
  else
    select array_agg(p.product_id) into products
    from (
      select o.product_id from old_rows as o
      union
      select n.product_id from new_rows as n
      limit 101
    ) as p;
  end if;
  if products is null then
    return null;  -- the statement changed no row
  end if;
  payload := jsonb_build_object('table', tg_table_name, 'op', lower(tg_op));
  if cardinality(products) <= 100 then
    payload := payload || jsonb_build_object('products', products);
    -- The (product, location) pairs too, at most 30 (NOTIFY's payload is bounded: 8000 bytes
    -- hold 100 products, 20 organizations and 30 pairs): more are not named (the products are).
    if tg_op = 'INSERT' then
      select jsonb_agg(jsonb_build_array(d.product_id, d.location_id)) into places
      from (select distinct n.product_id, n.location_id from new_rows as n limit 31) as d;
    elsif tg_op = 'DELETE' then
      select jsonb_agg(jsonb_build_array(d.product_id, d.location_id)) into places
      from (select distinct o.product_id, o.location_id from old_rows as o limit 31) as d;
    else
      select jsonb_agg(jsonb_build_array(d.product_id, d.location_id)) into places
      from (
        select o.product_id, o.location_id from old_rows as o
        union
        select n.product_id, n.location_id from new_rows as n
        limit 31
      ) as d;
    end if;
    if jsonb_array_length(places) <= 30 then
      payload := payload || jsonb_build_object('places', places);
    end if;
  end if;
  -- With the argument 'organization_id': at most 20 organizations are named, more are not.
  if tg_nargs > 0 and tg_argv[0] = 'organization_id' then
    if tg_op = 'INSERT' then
      select array_agg(d.organization_id) into organizations
      from (select distinct n.organization_id from new_rows as n limit 21) as d;
    elsif tg_op = 'DELETE' then
      select array_agg(d.organization_id) into organizations
      from (select distinct o.organization_id from old_rows as o limit 21) as d;
    else
      select array_agg(d.organization_id) into organizations
      from (
        select o.organization_id from old_rows as o
        union
        select n.organization_id from new_rows as n
        limit 21
      ) as d;
    end if;
    if cardinality(organizations) <= 20 then
      payload := payload || jsonb_build_object('organizations', organizations);
    end if;
  end if;
  -- The proxy's token of the write that ran this statement, as in private.notify_change.
  payload := payload || jsonb_strip_nulls(jsonb_build_object('write', substring(
    current_setting('request.headers', true) from '"x-nimbus-write":"([0-9a-f]{32})"'
  )));
  perform pg_notify('nimbus_changes', payload::text);
  return null;
end
$$;

comment on function private.notify_stock_change() is
'Trigger: NOTIFY nimbus_changes with {"table", "op", "products": [product ids], "places":
[[product id, location id], ...]} per statement.

Statement-level trigger with transition tables (new_rows, old_rows) on the stock tables, whose
rows each belong to one product: the proxy then drops cached stock reads of those products
only (proxy/cache/dependencies.py), and cached reads of one product at one location of the
pairs in "places" only. A statement touching more than 100 products is reported without
"products", as a change of the whole table; more than 30 pairs, without "places" (the
products'' reads of one place are then dropped too); one touching no row is not reported. Declared with
the argument ''organization_id'', the payload also names the organizations of the changed rows
("organizations", at most 20; more are not named: the whole table). A write sent by the proxy
carries its token as "write" (private.notify_change).';

revoke all on function private.notify_stock_change() from public, anon;

grant execute on function private.notify_stock_change() to authenticated, service_role;
