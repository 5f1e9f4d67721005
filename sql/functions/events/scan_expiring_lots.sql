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
  prior text := current_setting('nimbus.ledger_write', true);
begin
  -- Lots past their expiry date that still hold stock become expired, once: the status change
  -- is the claim (a concurrent scan re-reads the row and skips it), and each is announced.
  -- Dates are each organization's (private.organization_today); the server's current_date, at
  -- most two days from any zone's, only narrows the rows asked.
  perform set_config('nimbus.ledger_write', 'on', true);
  for lot in
    with expired as (
      update public.lots as l
      set status = 'expired'
      where
        (scan_expiring_lots.lot_id is null or l.id = scan_expiring_lots.lot_id)
        and l.quantity > 0
        and l.expiry_date < current_date + 2
        and l.status in ('available', 'quarantined')
        and l.expiry_date < private.organization_today(l.organization_id)
      returning
        l.id, l.organization_id, l.product_id, l.location_id, l.lot_number, l.expiry_date,
        l.quantity, private.organization_today(l.organization_id) as today
    )

    select e.*
    from expired as e
    order by e.organization_id, e.expiry_date, e.id
  loop
    payload := jsonb_build_object(
      'lot_id', lot.id,
      'product_id', lot.product_id,
      'location_id', lot.location_id,
      'lot_number', lot.lot_number,
      'expiry_date', lot.expiry_date,
      'quantity', lot.quantity,
      'days_left', lot.expiry_date - lot.today
    );
    insert into public.notifications (organization_id, kind, payload)
    values (lot.organization_id, 'lot_expired', payload)
    returning id into event_id;
    perform pg_notify('nimbus_events', jsonb_build_object(
      'id', event_id,
      'organization_id', lot.organization_id,
      'kind', 'lot_expired',
      'payload', payload
    )::text);
    n := n + 1;
  end loop;
  -- Restore, not switch off: the lots triggers run this inside the stock functions' writes.
  perform set_config('nimbus.ledger_write', coalesce(prior, 'off'), true);

  -- Lots entering their expiry window (still usable) are announced once each.
  if scan_expiring_lots.lot_id is null then
    select coalesce(array_agg(l.id), '{}') into due
    from public.lots as l
    left join public.settings as s on l.organization_id = s.organization_id
    where
      l.quantity > 0
      and l.status = 'available'
      and l.expiry_date >= current_date - 2
      and l.expiry_date
      <= current_date + 2 + coalesce((s.value ->> 'expiry_warning_days')::integer, 30)
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
        coalesce((s.value ->> 'expiry_warning_days')::integer, 30) as window_days,
        private.organization_today(l.organization_id) as today
      from public.lots as l
      left join public.settings as s on l.organization_id = s.organization_id
      where
        l.id = any(due)
        and l.quantity > 0
        and l.status = 'available'
    ),

    claimed as (
      insert into private.lot_expiry_notices as e (lot_id, organization_id, expiry_date)
      select c.id, c.organization_id, c.expiry_date
      from candidates as c
      where c.expiry_date >= c.today and c.expiry_date <= c.today + c.window_days
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
      'days_left', lot.expiry_date - lot.today,
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
'Expires lots past their date and announces lots entering their expiry window, once per lot.

Dates are the organization''s (private.organization_today). A lot with stock whose expiry_date
is before its organization''s today and whose status is available or
quarantined is set to expired and announced by a lot_expired notification (the status change
is the once-only claim; an expired lot never becomes available again, see set_lot_status).
A lot with stock, status available, that expires today or within the organization''s
expiry_warning_days (default 30) - the rule of public.expiring_soon - is claimed in
private.lot_expiry_notices (so it is never announced twice, even by concurrent scans) and
announced by a lot_expiring notification. Payloads: lot_id, product_id, location_id,
lot_number, expiry_date, quantity, days_left (and window_days for lot_expiring); each is also
NOTIFY''d on nimbus_events. lot_id null scans every lot (run by each analytics refresh, as time
moves lots into the window and past their date); a lot id checks that lot only (the lots
triggers). Returns the number of notifications written (both kinds). Security invoker: run by
the table owner (refresh, pg_cron) and the security definer trigger function
private.lot_expiring_event; it writes lots under nimbus.ledger_write, restoring the setting.';

revoke all on function private.scan_expiring_lots(uuid) from public, anon, authenticated;
