create or replace function private.demand_model_run(
  demand double precision[],
  model text,
  u double precision[],
  horizon integer,
  out sse double precision,
  out forecast double precision[],
  out params jsonb
)
language plpgsql
immutable
parallel safe
security invoker
set search_path = ''
as $$
declare
  -- Each parameter in [0, 1] is mapped onto the model's admissible region (the usual ETS
  -- bounds: beta below alpha, gamma below 1 - alpha, phi in [0.8, 0.98]).
  a double precision := 0.0001 + 0.9998 * least(greatest(u[1], 0), 1);
  b double precision := a * least(greatest(coalesce(u[2], 0), 0), 1);
  g double precision;
  p double precision;
begin
  case model
    when 'ses' then
      select f.sse, f.forecast into sse, forecast
      from private.ets_filter(demand, a, 0, 0, 1, false, false, horizon) as f;
      params := jsonb_build_object('alpha', a);
    when 'holt_damped' then
      p := 0.8 + 0.18 * least(greatest(u[3], 0), 1);
      select f.sse, f.forecast into sse, forecast
      from private.ets_filter(demand, a, b, 0, p, true, false, horizon) as f;
      params := jsonb_build_object('alpha', a, 'beta', b, 'phi', p);
    when 'seasonal' then
      g := (1 - a) * least(greatest(u[2], 0), 1);
      select f.sse, f.forecast into sse, forecast
      from private.ets_filter(demand, a, 0, g, 1, false, true, horizon) as f;
      params := jsonb_build_object('alpha', a, 'gamma', g);
    when 'holt_winters_damped' then
      g := (1 - a) * least(greatest(u[3], 0), 1);
      p := 0.8 + 0.18 * least(greatest(u[4], 0), 1);
      select f.sse, f.forecast into sse, forecast
      from private.ets_filter(demand, a, b, g, p, true, true, horizon) as f;
      params := jsonb_build_object('alpha', a, 'beta', b, 'gamma', g, 'phi', p);
    when 'sba', 'tsb' then
      -- Intermittent smoothing constants stay in [0.01, 0.5].
      a := 0.01 + 0.49 * least(greatest(u[1], 0), 1);
      b := 0.01 + 0.49 * least(greatest(coalesce(u[2], 0), 0), 1);
      select f.sse, f.forecast into sse, forecast
      from private.intermittent_filter(demand, model, a, b, horizon) as f;
      params := case
        when model = 'sba' then jsonb_build_object('alpha', a)
        else jsonb_build_object('alpha', a, 'beta', b)
      end;
    else
      raise sqlstate 'PT400' using
        message = 'unknown forecast model',
        detail = model,
        hint = 'validation_failed';
  end case;
end
$$;

comment on function private.demand_model_run(
  double precision[], text, double precision[], integer
) is
'Runs one forecast model with parameters given in the unit cube: SSE, next days, parameters.

Models and their parameters u (each in [0, 1], clamped): ses (alpha), holt_damped (alpha, beta
as a share of alpha, phi in [0.8, 0.98]), seasonal (alpha, gamma as a share of 1 - alpha; weekly
additive season, no trend), holt_winters_damped (alpha, beta, gamma, phi: additive Holt-Winters
with a damped trend, period 7), sba and tsb (alpha, and tsb''s beta, in [0.01, 0.5]). params
gives the mapped values. The search over u is private.demand_model_fit''s.';

revoke all on function private.demand_model_run(
  double precision[], text, double precision[], integer
) from public, anon;

grant execute on function private.demand_model_run(
  double precision[], text, double precision[], integer
) to authenticated, service_role;
