-- Triggers on public.notification_reads; re-applied by every `nimbus migrate` (create or replace).

-- Row changes are reported only when the statement changed a row (a trigger with a transition
-- table takes one event); truncate always.
create or replace trigger notification_reads_notify_change
after truncate on public.notification_reads
for each statement execute function private.notify_change();

create or replace trigger notification_reads_notify_insert
after insert on public.notification_reads
referencing new table as new_rows
for each statement execute function private.notify_change('rows', 'user_id');

create or replace trigger notification_reads_notify_update
after update on public.notification_reads
referencing old table as old_rows new table as new_rows
for each statement execute function private.notify_change('rows', 'user_id');

create or replace trigger notification_reads_notify_delete
after delete on public.notification_reads
referencing old table as old_rows
for each statement execute function private.notify_change('rows', 'user_id');
