create or replace function private.costing_method(method text, organization_id uuid)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  chosen text := costing_method.method;
begin
  if chosen is null then
    select s.value ->> 'costing_method' into chosen
    from public.settings as s
    where s.organization_id = costing_method.organization_id;
  end if;
  chosen := coalesce(chosen, 'weighted_average');
  if chosen not in ('weighted_average', 'fifo') then
    raise sqlstate 'PT400' using
      message = 'method must be weighted_average or fifo',
      detail = chosen,
      hint = 'validation_failed';
  end if;
  return chosen;
end
$$;

comment on function private.costing_method(text, uuid) is
'The costing method a report uses: method when given, else the organization''s setting
costing_method, else weighted_average.

Anything but weighted_average or fifo: PT400 validation_failed. Security invoker: called by the
security definer analytics functions with the caller''s active organization.';

revoke all on function private.costing_method(text, uuid) from public, anon, authenticated;
