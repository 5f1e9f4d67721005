-- RLS on private.realtime_spill: whoever changes a published row may record its oversized change
-- (private.realtime_change runs as the writer); nobody reads it over the API (schema private; the
-- proxy reads it as the table's owner).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table private.realtime_spill enable row level security;

drop policy if exists "writers can record oversized realtime changes"
on private.realtime_spill;

create policy "writers can record oversized realtime changes"
on private.realtime_spill
for insert
to authenticated, service_role
with check (true);
