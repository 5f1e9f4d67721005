-- Canonical definition of private.settings_valid. Migration 20261126000100_inventory_schema.sql
-- creates an identical copy first, because the check constraint on public.settings.value needs
-- the function to exist when the table is created; `nimbus migrate` re-applies this file every run.
create or replace function private.settings_valid(value jsonb)
returns boolean
language sql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
  select case
    when jsonb_typeof(settings_valid.value) <> 'object' then false
    else (
      select coalesce(bool_and(coalesce(
        case e.key
          when 'currency' then s.txt ~ '^[A-Z]{3}$'
          when 'timezone' then s.txt ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$'
          when 'default_low_stock_threshold' then
            s.num >= 0 and s.num <= 2147483647 and s.num = trunc(s.num)
          when 'expiry_warning_days' then s.num between 1 and 365 and s.num = trunc(s.num)
          when 'forecast_horizon_days' then s.num between 1 and 365 and s.num = trunc(s.num)
          when 'service_level' then s.num > 0.5 and s.num <= 0.9999
          when 'costing_method' then s.txt in ('weighted_average', 'fifo')
          when 'over_receipt_tolerance' then s.num >= 0 and s.num <= 1
          else false
        end,
        false
      )), true)
      from jsonb_each(settings_valid.value) as e (key, val)
      cross join lateral (
        select
          case when jsonb_typeof(e.val) = 'string' then e.val #>> '{}' end as txt,
          case when jsonb_typeof(e.val) = 'number' then e.val::numeric end as num
      ) as s
    )
  end
$$;

comment on function private.settings_valid(jsonb) is
'True when an organization settings document has only known keys with valid values.

Keys (all optional): currency (ISO 4217 code, ^[A-Z]{3}$), timezone (IANA-shaped name; whether
PostgreSQL knows it is checked by the trigger function private.settings_timezone_known, since
pg_timezone_names is not immutable), default_low_stock_threshold (integer >= 0),
expiry_warning_days (integer 1..365), forecast_horizon_days (integer 1..365), service_level
(number in (0.5, 0.9999]), costing_method (weighted_average or fifo: the method reports use),
over_receipt_tolerance (fraction 0..1 of an ordered quantity a receipt may exceed it by).
forecast_alpha is no longer a key (migration 20261206001100: the forecast fits its own
parameters). JSON null is not a valid value: remove the key to fall back to the default. Used by
the check constraint on public.settings.value.';

revoke all on function private.settings_valid(jsonb) from public, anon;

-- The check constraint runs with the privileges of whoever writes public.settings.
grant execute on function private.settings_valid(jsonb) to authenticated, service_role;
