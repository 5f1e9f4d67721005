-- Triggers on public.stock_movements; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger stock_movements_guard_ledger
before insert or update or delete on public.stock_movements
for each row execute function private.guard_ledger();

create or replace trigger stock_movements_guard_truncate
before truncate on public.stock_movements
for each statement execute function private.guard_truncate();

create or replace trigger stock_movements_audit
after insert or update or delete on public.stock_movements
for each row execute function private.audit_row('id');

create or replace trigger stock_movements_notify_change
after insert or update or delete or truncate on public.stock_movements
for each statement execute function private.notify_change();
