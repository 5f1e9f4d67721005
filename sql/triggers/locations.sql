-- Triggers on public.locations; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger locations_set_updated_at
before update on public.locations
for each row execute function private.set_updated_at();

create or replace trigger locations_audit
after insert or update or delete on public.locations
for each row execute function private.audit_row('id');

create or replace trigger locations_notify_change
after insert or update or delete or truncate on public.locations
for each statement execute function private.notify_change();
