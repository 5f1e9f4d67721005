create or replace function private.order_status_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  payload jsonb;
  event_id bigint;
begin
  payload := jsonb_build_object(
    'order_id', new.id,
    'number', new.number,
    'kind', new.kind,
    'from', old.status,
    'to', new.status
  );
  insert into public.notifications (organization_id, kind, payload)
  values (new.organization_id, 'order_status', payload)
  returning id into event_id;
  perform pg_notify('nimbus_events', jsonb_build_object(
    'id', event_id,
    'organization_id', new.organization_id,
    'kind', 'order_status',
    'payload', payload
  )::text);
  return null;
end
$$;

comment on function private.order_status_event() is
'Trigger: an order_status notification on every change of orders.status.

After update row trigger (when the status changes). Writes public.notifications and NOTIFY
nimbus_events. Security definer because clients may not write notifications.';

revoke all on function private.order_status_event() from public, anon;

grant execute on function private.order_status_event() to authenticated, service_role;
