-- RLS on public.notification_reads: each user reads, marks and unmarks only their own
-- rows, for notifications they can see.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.notification_reads enable row level security;

drop policy if exists "users can read their own notification reads"
on public.notification_reads;

create policy "users can read their own notification reads"
on public.notification_reads
for select
to authenticated
using (user_id = (select auth.uid()));

drop policy if exists "users can mark visible notifications read"
on public.notification_reads;

create policy "users can mark visible notifications read"
on public.notification_reads
for insert
to authenticated
with check (
  user_id = (select auth.uid())
  and exists (
    select from public.notifications as n
    where n.id = notification_reads.notification_id
  )
);

drop policy if exists "users can delete their own notification reads"
on public.notification_reads;

create policy "users can delete their own notification reads"
on public.notification_reads
for delete
to authenticated
using (user_id = (select auth.uid()));
