create or replace function private.scan_expiring_lots(lot_id uuid default null)
returns integer
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  due uuid [];
  lot record;
  payload jsonb;
  event_id bigint;
  n integer := 0;
begin
  if scan_expiring_lots.lot_id is null then
    select coalesce(array_agg(l.id), '{}') into due
    from public.lots as l
    left join public.settings as s on l.organization_id = s.organization_id
    where
      l.quantity > 0
      and l.expiry_date
      <= current_date + coalesce((s.value ->> 'expiry_warning_days')::integer, 30)
      and not exists (select from private.lot_expiry_notices as e where e.lot_id = l.id);
  else
    due := array[scan_expiring_lots.lot_id];
  end if;

  -- Claim the due lots (the primary key makes a concurrent scan skip them), then announce each.
  for lot in
    with
    candidates as (
      select
        l.id,
        l.organization_id,
        l.product_id,
        l.location_id,
        l.lot_number,
        l.expiry_date,
        l.quantity,
        coalesce((s.value ->> 'expiry_warning_days')::integer, 30) as window_days
      from public.lots as l
      left join public.settings as s on l.organization_id = s.organization_id
      where l.id = any(due) and l.quantity > 0 and l.expiry_date is not null
    ),

    claimed as (
      insert into private.lot_expiry_notices as e (lot_id, organization_id, expiry_date)
      select c.id, c.organization_id, c.expiry_date
      from candidates as c
      where c.expiry_date <= current_date + c.window_days
      on conflict on constraint lot_expiry_notices_pkey do nothing
      returning e.lot_id
    )

    select c.*
    from candidates as c
    inner join claimed as k on c.id = k.lot_id
    order by c.organization_id, c.expiry_date, c.id
  loop
    payload := jsonb_build_object(
      'lot_id', lot.id,
      'product_id', lot.product_id,
      'location_id', lot.location_id,
      'lot_number', lot.lot_number,
      'expiry_date', lot.expiry_date,
      'quantity', lot.quantity,
      'days_left', lot.expiry_date - current_date,
      'window_days', lot.window_days
    );
    insert into public.notifications (organization_id, kind, payload)
    values (lot.organization_id, 'lot_expiring', payload)
    returning id into event_id;
    update private.lot_expiry_notices as e
    set notification_id = event_id
    where e.lot_id = lot.id;
    perform pg_notify('nimbus_events', jsonb_build_object(
      'id', event_id,
      'organization_id', lot.organization_id,
      'kind', 'lot_expiring',
      'payload', payload
    )::text);
    n := n + 1;
  end loop;
  return n;
end
$$;

comment on function private.scan_expiring_lots(uuid) is
'Announces lots entering their expiry window: one lot_expiring notification per lot, ever.

A lot is in the window when it has stock and expires within the organization''s
expiry_warning_days (default 30; already expired lots included), the rule of
public.expiring_soon. Each newly due lot is claimed in private.lot_expiry_notices (so a lot is
never announced twice, even by concurrent scans), written to public.notifications (payload:
lot_id, product_id, location_id, lot_number, expiry_date, quantity, days_left, window_days) and
NOTIFY''d on nimbus_events. lot_id null scans every lot (run by each analytics refresh, as time
moves lots into the window); a lot id checks that lot only (the lots triggers). Returns the
number of lots announced. Security invoker: run by the table owner (refresh, pg_cron) and the
security definer trigger function private.lot_expiring_event.';

revoke all on function private.scan_expiring_lots(uuid) from public, anon, authenticated;
