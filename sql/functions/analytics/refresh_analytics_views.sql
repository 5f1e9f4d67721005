create or replace function private.refresh_analytics_views(concurrent boolean default true)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v text;
  started timestamptz;
  result jsonb := '[]'::jsonb;
begin
  -- Readers after what they read: daily_sales feeds organization_summary and the sales rollups,
  -- product_sales_stats and product_stock feed reorder_inputs, product_stock stock_by_group.
  foreach v in array array[
    'private.daily_sales', 'private.daily_stock_changes', 'private.organization_summary',
    'private.location_daily_sales', 'private.category_daily_sales',
    'private.product_sales_stats', 'private.product_stock', 'private.reorder_inputs',
    'private.stock_by_group'
  ] loop
    started := clock_timestamp();
    if v = 'private.reorder_inputs' then
      -- Its forecasts per product and location, fitted once per demand day (issue 16).
      perform private.refresh_demand_forecasts();
    end if;
    if concurrent then
      execute format('refresh materialized view concurrently %s', v);
    else
      execute format('refresh materialized view %s', v);
    end if;
    -- Fresh statistics for the readers' plans (autovacuum may be off or lag behind).
    execute format('analyze %s', v);
    insert into private.analytics_refreshes as r (view, refreshed_at, duration_ms)
    values (
      v, started,
      extract(epoch from clock_timestamp() - started) * 1000
    )
    on conflict (view) do update
    set refreshed_at = excluded.refreshed_at, duration_ms = excluded.duration_ms;
    result := result || jsonb_build_object(
      'view', v,
      'refreshed_at', started,
      'duration_ms', round(extract(epoch from clock_timestamp() - started)::numeric * 1000, 1)
    );
  end loop;
  -- Time moves lots into their expiry window without any write: announce them here, so that
  -- pg_cron, `nimbus refresh` and public.refresh_analytics all do.
  perform private.scan_expiring_lots();
  -- Cached analytics answers depend on the views, not only on the tables they summarise.
  perform pg_notify('nimbus_changes', '{"table": "analytics_views"}');
  return result;
end
$$;

comment on function private.refresh_analytics_views(boolean) is
'Refresh every analytics materialized view and record when, in private.analytics_refreshes.

concurrent = true (the default, for pg_cron, `nimbus refresh` and the refresh_analytics RPC)
keeps the views readable during the refresh; false is faster and is for bulk loads. Returns
one object per view: view, refreshed_at (when its refresh started, i.e. the data''s as_of)
and duration_ms (refresh and ANALYZE, which keeps the readers'' plans right). Before private.reorder_inputs it runs private.refresh_demand_forecasts (its forecasts, fitted
once per demand day; counted in its duration_ms). Then runs private.scan_expiring_lots() (lot_expiring notifications for lots
that entered their expiry window as days passed) and notifies nimbus_changes with the
pseudo-table analytics_views, which cached analytics answers depend on. Internal: run by the table owner, pg_cron or
public.refresh_analytics.';

revoke all on function private.refresh_analytics_views(boolean) from public, anon;
