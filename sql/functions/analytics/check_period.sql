create or replace function private.check_period(first_day date, last_day date)
returns void
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if check_period.first_day > check_period.last_day
    or check_period.last_day - check_period.first_day > 1100 then
    raise sqlstate 'PT400' using
      message = 'invalid date range',
      detail = format(
        'from %s to %s (at most 1100 days)', check_period.first_day, check_period.last_day
      ),
      hint = 'validation_failed';
  end if;
end
$$;

comment on function private.check_period(date, date) is
'Refuses (PT400 validation_failed) a reporting period that ends before it starts or spans more
than 1100 days: the bound every analytics function taking from/to applies.';

revoke all on function private.check_period(date, date) from public, anon, authenticated;
