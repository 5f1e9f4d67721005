create or replace function private.organization_today(organization_id uuid)
returns date
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  return (now() at time zone private.organization_timezone(organization_today.organization_id))::date;
end
$$;

comment on function private.organization_today(uuid) is
'The date it is now in an organization''s time zone (private.organization_timezone: its setting
timezone, else UTC): the "today" of its lots'' expiry. A lot is usable through its expiry date as
the organization''s clock reads it, not the database server''s: in Pacific/Auckland a lot dated
today is expired from local midnight, hours before UTC''s date turns. The current transaction''s
time (now()), so one transaction judges every lot by one date. Security invoker: members read
their own organization''s settings under RLS; for anyone else the zone is UTC.';

revoke all on function private.organization_today(uuid) from public, anon;

grant execute on function private.organization_today(uuid) to authenticated, service_role;
