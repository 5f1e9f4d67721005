-- Triggers on public.idempotency_keys; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger idempotency_keys_notify_change
after insert or update or delete or truncate on public.idempotency_keys
for each statement execute function private.notify_change();
