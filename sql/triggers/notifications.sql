-- Triggers on public.notifications; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger notifications_notify_change
after insert or update or delete or truncate on public.notifications
for each statement execute function private.notify_change();
