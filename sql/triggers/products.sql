-- Triggers on public.products; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger products_set_updated_at
before update on public.products
for each row execute function private.set_updated_at();

create or replace trigger products_audit
after insert or update or delete on public.products
for each row execute function private.audit_row('id');

create or replace trigger products_notify_change
after insert or update or delete or truncate on public.products
for each statement execute function private.notify_change();
