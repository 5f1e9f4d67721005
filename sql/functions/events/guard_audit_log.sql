create or replace function private.guard_audit_log()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  raise sqlstate 'PT409' using
    message = 'audit_log is append-only',
    detail = format('%s of an audit row refused', lower(tg_op)),
    hint = 'audit_append_only';
end
$$;

comment on function private.guard_audit_log() is
'Trigger: refuses every update and delete of public.audit_log.

Before row trigger. audit_log has no foreign key to organizations, so deleting an organization
leaves its audit trail in place and never reaches this trigger. Security invoker: reads nothing.';

revoke all on function private.guard_audit_log() from public, anon;

grant execute on function private.guard_audit_log() to authenticated, service_role;
