-- Lots already announced as entering their expiry window (lot_expiring notifications).
--
-- private.scan_expiring_lots (run by every analytics refresh and by the lots triggers) announces
-- each lot once: the primary key makes the claim atomic, so concurrent scans cannot both notify.

create table private.lot_expiry_notices (
  lot_id uuid primary key references public.lots (id) on delete cascade,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  expiry_date date not null,
  notification_id bigint references public.notifications (id) on delete set null,
  notified_at timestamptz not null default now()
);

comment on table private.lot_expiry_notices is
'One row per lot already announced by a lot_expiring notification, so that it is announced once.';
comment on column private.lot_expiry_notices.expiry_date is
'The lot''s expiry date when it was announced.';
comment on column private.lot_expiry_notices.notification_id is
'The public.notifications row that announced it (null if that notification was deleted).';

create index lot_expiry_notices_organization_id_idx on private.lot_expiry_notices (
  organization_id
);

create index lot_expiry_notices_notification_id_idx on private.lot_expiry_notices (
  notification_id
);

revoke all on table private.lot_expiry_notices from public, anon, authenticated, service_role;
