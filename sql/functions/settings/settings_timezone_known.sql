create or replace function private.settings_timezone_known()
returns trigger
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
  if new.value ? 'timezone' and not exists (
    select from pg_catalog.pg_timezone_names as z where z.name = new.value ->> 'timezone'
  ) then
    raise sqlstate 'PT400' using
      message = 'timezone must be a time zone name PostgreSQL knows, e.g. Europe/Paris',
      detail = new.value ->> 'timezone',
      hint = 'validation_failed';
  end if;
  return new;
end
$$;

comment on function private.settings_timezone_known() is
'Trigger: refuses (PT400 validation_failed) a settings document whose timezone is not a name
in pg_timezone_names (IANA names such as Pacific/Auckland, and UTC).

The check constraint (private.settings_valid) only checks the shape: it must be immutable, and
the list of zones is not. Runs only on writes whose document has a timezone (reading the list
costs tens of milliseconds; settings are written rarely).';

revoke all on function private.settings_timezone_known() from public, anon, authenticated;
