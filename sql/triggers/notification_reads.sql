-- Triggers on public.notification_reads; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger notification_reads_notify_change
after insert or update or delete or truncate on public.notification_reads
for each statement execute function private.notify_change();
