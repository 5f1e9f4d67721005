-- Realtime: the tables whose row changes /realtime/v1/websocket serves (postgres_changes),
-- like Supabase's supabase_realtime publication. One after-row trigger per table NOTIFYs
-- nimbus_realtime (private.realtime_change); re-applied by every `nimbus migrate`.
-- audit_log and idempotency_keys are deliberately not published. notification_reads is read by
-- its own user only: the proxy asks the database, as each subscriber, per change.

create or replace trigger realtime_change
after insert or update or delete on public.categories
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.locations
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.lots
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.memberships
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.notifications
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.notification_reads
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.order_items
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.orders
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.organizations
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.products
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.reorder_rules
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.settings
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.stock_count_lines
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.stock_counts
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.stock_levels
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.stock_movements
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.supplier_products
for each row execute function private.realtime_change();

create or replace trigger realtime_change
after insert or update or delete on public.suppliers
for each row execute function private.realtime_change();
