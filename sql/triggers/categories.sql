-- Triggers on public.categories; re-applied by every `nimbus migrate` (create or replace).

create or replace trigger categories_set_updated_at
before update on public.categories
for each row execute function private.set_updated_at();

create or replace trigger categories_audit
after insert or update or delete on public.categories
for each row execute function private.audit_row('id');

create or replace trigger categories_notify_change
after insert or update or delete or truncate on public.categories
for each statement execute function private.notify_change();
