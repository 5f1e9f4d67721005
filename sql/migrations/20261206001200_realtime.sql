-- Realtime postgres_changes (issue 17): the row changes the proxy's /realtime/v1/websocket
-- serves come from an after-row trigger on each published table (sql/triggers/realtime.sql,
-- function private.realtime_change), which NOTIFYs `nimbus_realtime` at commit. A change whose
-- message is over NOTIFY's payload limit is kept here, and the notification names it instead, so
-- the proxy fetches it rather than dropping it. The proxy deletes kept changes after a few minutes.
-- This migration must not call functions from sql/functions (applied after the migrations).

create table private.realtime_spill (
  id uuid primary key default gen_random_uuid(),
  message jsonb not null,
  created_at timestamptz not null default now()
);

comment on table private.realtime_spill is
'Row changes too large for a NOTIFY payload, kept for the proxy''s Realtime listener to fetch.

Written by private.realtime_change() as whoever made the change (insert only); read and pruned by
the proxy''s own database connection. Not exposed (schema private).';

create index realtime_spill_created_at_idx on private.realtime_spill (created_at);

grant insert on private.realtime_spill to authenticated, service_role;
