create or replace function private.inverse_normal_cdf(p double precision)
returns double precision
language plpgsql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
declare
  -- Acklam's rational approximation (relative error < 1.15e-9).
  a double precision[] := array[
    -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
    1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00
  ];
  b double precision[] := array[
    -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
    6.680131188771972e+01, -1.328068155288572e+01
  ];
  c double precision[] := array[
    -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
    -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00
  ];
  d double precision[] := array[
    7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
    3.754408661907416e+00
  ];
  p_low constant double precision := 0.02425;
  q double precision;
  r double precision;
begin
  if p <= 0 or p >= 1 then
    raise sqlstate 'PT400' using
      message = 'probability must be between 0 and 1 (exclusive)',
      detail = p::text,
      hint = 'validation_failed';
  end if;
  if p < p_low then
    q := sqrt(-2 * ln(p));
    return (((((c[1] * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) * q + c[6])
      / ((((d[1] * q + d[2]) * q + d[3]) * q + d[4]) * q + 1);
  elsif p <= 1 - p_low then
    q := p - 0.5;
    r := q * q;
    return (((((a[1] * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * r + a[6]) * q
      / (((((b[1] * r + b[2]) * r + b[3]) * r + b[4]) * r + b[5]) * r + 1);
  end if;
  q := sqrt(-2 * ln(1 - p));
  return -(((((c[1] * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) * q + c[6])
    / ((((d[1] * q + d[2]) * q + d[3]) * q + d[4]) * q + 1);
end
$$;

comment on function private.inverse_normal_cdf(double precision) is
'Quantile of the standard normal distribution: the z with P(Z <= z) = p, 0 < p < 1.

Acklam''s rational approximation, relative error below 1.15e-9 (0.95 -> 1.644854). Used for
the safety-stock factor of reorder_suggestions from the service_level setting.';

revoke all on function private.inverse_normal_cdf(double precision) from public, anon;

grant execute on function private.inverse_normal_cdf(double precision)
to authenticated, service_role;
