-- Triggers on public.order_items; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger order_items_set_updated_at
before update on public.order_items
for each row execute function private.set_updated_at();

create or replace trigger order_items_audit
after insert or update or delete on public.order_items
for each row execute function private.audit_row('id');

create or replace trigger order_items_notify_change
after insert or update or delete or truncate on public.order_items
for each statement execute function private.notify_change();
