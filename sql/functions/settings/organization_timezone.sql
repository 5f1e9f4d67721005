-- Canonical definition of private.organization_timezone. Migration
-- 20261206001100_analytics_local_days.sql creates an identical copy first, because the analytics
-- materialized views it recreates call it; `nimbus migrate` re-applies this file every run.
create or replace function private.organization_timezone(organization_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  zone text;
begin
  select s.value ->> 'timezone' into zone
  from public.settings as s
  where s.organization_id = organization_timezone.organization_id;
  if zone is null then
    return 'UTC';
  end if;
  -- A name written before names were checked (settings_timezone_known) may be unknown: UTC.
  perform now() at time zone zone;
  return zone;
exception
  when invalid_parameter_value then
    return 'UTC';
end
$$;

comment on function private.organization_timezone(uuid) is
'The time zone an organization''s days are counted in: its setting timezone, else UTC.

Analytics bucket sales and stock movements into days, weeks and months of this zone, and their
"today" is the date there. A stored name PostgreSQL does not know (possible only in rows written
before private.settings_timezone_known checked names) counts as UTC, so that one bad row cannot
stop the refresh of every organization''s views. Security invoker: the analytics functions and
materialized views call it with the privileges of their owner; members call it through
private.organization_today, and read only their own organization''s settings (RLS).';

revoke all on function private.organization_timezone(uuid) from public, anon;

grant execute on function private.organization_timezone(uuid) to authenticated, service_role;
