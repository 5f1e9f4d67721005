create or replace function private.notify_stock_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  -- The proxy's token of the write that ran this statement, as in private.notify_change.
  token text := substring(
    current_setting('request.headers', true) from '"x-nimbus-write":"([0-9a-f]{32})"'
  );
  products uuid[];
  places jsonb;
  organizations uuid[];
  payload jsonb;
begin
  -- One pass over the statement's rows (both sides of an update): its distinct products,
  -- (product, location) pairs and organizations (read from each row's JSON: only tables with
  -- the column are declared with the argument 'organization_id').
  if tg_op = 'INSERT' then
    select
      array_agg(distinct n.product_id),
      jsonb_agg(distinct jsonb_build_array(n.product_id, n.location_id)),
      array_agg(distinct (to_jsonb(n) ->> 'organization_id')::uuid)
    into products, places, organizations
    from new_rows as n;
  elsif tg_op = 'DELETE' then
    select
      array_agg(distinct o.product_id),
      jsonb_agg(distinct jsonb_build_array(o.product_id, o.location_id)),
      array_agg(distinct (to_jsonb(o) ->> 'organization_id')::uuid)
    into products, places, organizations
    from old_rows as o;
  else
    select
      array_agg(distinct c.product_id),
      jsonb_agg(distinct jsonb_build_array(c.product_id, c.location_id)),
      array_agg(distinct c.organization_id)
    into products, places, organizations
    from (
      select o.product_id, o.location_id, (to_jsonb(o) ->> 'organization_id')::uuid as organization_id
      from old_rows as o
      union all
      select n.product_id, n.location_id, (to_jsonb(n) ->> 'organization_id')::uuid
      from new_rows as n
    ) as c;
  end if;
  if products is null then
    return null;  -- the statement changed no row
  end if;
  payload := jsonb_build_object('table', tg_table_name, 'op', lower(tg_op));
  -- At most 100 products (more: a change of the whole table), and with them at most 30 pairs
  -- (NOTIFY's payload is bounded: 8000 bytes hold 100 products, 20 organizations and 30
  -- pairs; more pairs are not named, the products are).
  if cardinality(products) <= 100 then
    payload := payload || jsonb_build_object('products', products);
    if jsonb_array_length(places) <= 30 then
      payload := payload || jsonb_build_object('places', places);
    end if;
  end if;
  -- With the argument 'organization_id': at most 20 organizations are named, more are not.
  if tg_nargs > 0 and tg_argv[0] = 'organization_id' and cardinality(organizations) <= 20 then
    payload := payload || jsonb_build_object('organizations', organizations);
  end if;
  if token is not null then
    payload := payload || jsonb_build_object('write', token, 'tx', pg_current_xact_id()::text);
  end if;
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
carries its token as "write" and the transaction id as "tx" (private.notify_change).';

revoke all on function private.notify_stock_change() from public, anon;

grant execute on function private.notify_stock_change() to authenticated, service_role;
