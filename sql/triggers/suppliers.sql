-- Triggers on public.suppliers; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger suppliers_set_updated_at
before update on public.suppliers
for each row execute function private.set_updated_at();

create or replace trigger suppliers_audit
after insert or update or delete on public.suppliers
for each row execute function private.audit_row('id');

create or replace trigger suppliers_notify_change
after insert or update or delete or truncate on public.suppliers
for each statement execute function private.notify_change();
