-- Triggers on public.stock_levels; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger stock_levels_guard_ledger
before insert or update or delete on public.stock_levels
for each row execute function private.guard_ledger();

create or replace trigger stock_levels_guard_truncate
before truncate on public.stock_levels
for each statement execute function private.guard_truncate();

create or replace trigger stock_levels_set_updated_at
before update on public.stock_levels
for each row execute function private.set_updated_at();

create or replace trigger stock_levels_audit
after insert or update or delete on public.stock_levels
for each row execute function private.audit_row('product_id', 'location_id');

create or replace trigger stock_levels_low_stock_event
after update of on_hand on public.stock_levels
for each row when (new.on_hand < old.on_hand)
execute function private.low_stock_event();

create or replace trigger stock_levels_notify_change
after insert or update or delete or truncate on public.stock_levels
for each statement execute function private.notify_change();
