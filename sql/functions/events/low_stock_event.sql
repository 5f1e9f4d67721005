create or replace function private.low_stock_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  threshold integer;
  payload jsonb;
  event_id bigint;
begin
  threshold := private.low_stock_threshold(new.product_id);
  if old.on_hand > threshold and new.on_hand <= threshold then
    payload := jsonb_build_object(
      'product_id', new.product_id,
      'location_id', new.location_id,
      'on_hand', new.on_hand,
      'threshold', threshold
    );
    insert into public.notifications (organization_id, kind, payload)
    values (new.organization_id, 'low_stock', payload)
    returning id into event_id;
    perform pg_notify('nimbus_events', jsonb_build_object(
      'id', event_id,
      'organization_id', new.organization_id,
      'kind', 'low_stock',
      'payload', payload
    )::text);
  end if;
  return null;
end
$$;

comment on function private.low_stock_event() is
'Trigger: a low_stock notification when on_hand crosses from above to at-or-below the threshold.

After update row trigger on stock_levels (per product and location). Fires once per crossing,
not on every write below the threshold; rising above it re-arms it. Threshold:
private.low_stock_threshold. Writes public.notifications and NOTIFY nimbus_events. Security
definer because clients may not write notifications.';

revoke all on function private.low_stock_event() from public, anon;

grant execute on function private.low_stock_event() to authenticated, service_role;
