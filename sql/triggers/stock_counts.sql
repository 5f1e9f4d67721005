-- Triggers on public.stock_counts; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger stock_counts_set_updated_at
before update on public.stock_counts
for each row execute function private.set_updated_at();

create or replace trigger stock_counts_audit
after insert or update or delete on public.stock_counts
for each row execute function private.audit_row('id');

create or replace trigger stock_counts_notify_change
after insert or update or delete or truncate on public.stock_counts
for each statement execute function private.notify_change();
