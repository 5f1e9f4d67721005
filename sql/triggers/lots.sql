-- Triggers on public.lots; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger lots_guard_ledger
before insert or update or delete on public.lots
for each row execute function private.guard_ledger();

create or replace trigger lots_guard_truncate
before truncate on public.lots
for each statement execute function private.guard_truncate();

create or replace trigger lots_set_updated_at
before update on public.lots
for each row execute function private.set_updated_at();

create or replace trigger lots_audit
after insert or update or delete on public.lots
for each row execute function private.audit_row('id');

create or replace trigger lots_notify_change
after insert or update or delete or truncate on public.lots
for each statement execute function private.notify_change();
