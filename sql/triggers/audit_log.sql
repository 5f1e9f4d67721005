-- Triggers on public.audit_log; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger audit_log_guard_truncate
before truncate on public.audit_log
for each statement execute function private.guard_truncate();

create or replace trigger audit_log_append_only
before update or delete on public.audit_log
for each row execute function private.guard_audit_log();

create or replace trigger audit_log_notify_change
after insert or update or delete or truncate on public.audit_log
for each statement execute function private.notify_change();
