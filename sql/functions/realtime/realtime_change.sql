create or replace function private.realtime_change()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
declare
  -- A counter per transaction: NOTIFY folds identical payloads of one transaction, and two
  -- changes of a row can be identical (set a value, set it back, set it again).
  seq integer := coalesce(nullif(current_setting('nimbus.realtime_seq', true), ''), '0')::integer
    + 1;
  message text;
  spilled uuid;
begin
  perform set_config('nimbus.realtime_seq', seq::text, true);
  message := json_build_object(
    's', seq,
    'schema', tg_table_schema,
    'table', tg_table_name,
    'type', tg_op,
    'ts', clock_timestamp(),
    'new', case when tg_op <> 'DELETE' then to_jsonb(new) end,
    'old', case when tg_op <> 'INSERT' then to_jsonb(old) end
  )::text;
  if octet_length(message) > 7900 then
    spilled := gen_random_uuid();
    insert into private.realtime_spill (id, message) values (spilled, message::jsonb);
    message := json_build_object('s', seq, 'spill', spilled)::text;
  end if;
  perform pg_notify('nimbus_realtime', message);
  return null;
end
$$;

comment on function private.realtime_change() is
'Trigger: NOTIFY nimbus_realtime with one row change (schema, table, type, new and old row).

After row trigger on each table published to Realtime (sql/triggers/realtime.sql); delivered at
commit, in commit order, to every proxy process listening. The whole old row is sent: the proxy
gives clients its primary key only unless the table''s replica identity is full, and decides who
may see the change from it. A message over NOTIFY''s payload limit is kept in
private.realtime_spill and the notification carries its id instead ("spill").';

revoke all on function private.realtime_change() from public, anon;

grant execute on function private.realtime_change() to authenticated, service_role;
