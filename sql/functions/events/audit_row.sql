create or replace function private.audit_row()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_row jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  new_row jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
  any_row jsonb := coalesce(new_row, old_row);
  key_parts text[] := '{}';
  col text;
begin
  if tg_op = 'UPDATE' and old_row = new_row then
    return null;
  end if;
  foreach col in array tg_argv loop
    key_parts := key_parts || (any_row ->> col);
  end loop;
  insert into public.audit_log (
    organization_id, table_name, row_id, action, actor, actor_role, old_values, new_values
  )
  values (
    case
      when tg_table_name = 'organizations' then (any_row ->> 'id')::uuid
      else (any_row ->> 'organization_id')::uuid
    end,
    tg_table_name,
    array_to_string(key_parts, ','),
    lower(tg_op),
    auth.uid(),
    coalesce(nullif(auth.jwt() ->> 'role', ''), session_user),
    old_row,
    new_row
  );
  return null;
end
$$;

comment on function private.audit_row() is
'Trigger: appends one public.audit_log row per inserted, updated or deleted row.

After row trigger on every domain table; the trigger arguments name the primary-key columns
(joined with commas into audit_log.row_id). Records auth.uid() and the JWT role (or the session
user for direct connections such as the dashboard). Updates that change nothing are skipped.
Security definer because clients may not write audit_log (it is append-only and read by admins).';

revoke all on function private.audit_row() from public, anon;

grant execute on function private.audit_row() to authenticated, service_role;
