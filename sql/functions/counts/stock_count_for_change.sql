create or replace function private.stock_count_for_change(count_id uuid, min_role text)
returns public.stock_counts
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  found_count public.stock_counts;
begin
  perform private.require_user();
  select c.* into found_count
  from public.stock_counts as c
  where c.id = stock_count_for_change.count_id
  for update;
  if not found or not private.is_member(found_count.organization_id) then
    raise sqlstate 'PT404' using
      message = 'stock count not found',
      detail = coalesce(stock_count_for_change.count_id::text, 'null'),
      hint = 'not_found';
  end if;
  if not private.has_role(found_count.organization_id, stock_count_for_change.min_role) then
    raise sqlstate 'PT403' using
      message = 'your role may not do this to a stock count',
      detail = found_count.id::text,
      hint = 'forbidden';
  end if;
  if found_count.status <> 'open' then
    raise sqlstate 'PT409' using
      message = format('the stock count is %s', found_count.status),
      detail = found_count.id::text,
      hint = 'count_closed';
  end if;
  return found_count;
end
$$;

comment on function private.stock_count_for_change(uuid, text) is
'The open stock count to change, locked FOR UPDATE, once the caller may change it.

PT401 without a user; PT404 not_found when it does not exist or is another organization''s;
PT403 forbidden below min_role; PT409 count_closed when it is posted or cancelled. Locking the
count first serializes recording, posting and cancelling one count (then stock rows are locked
in (product_id, location_id) order). Security invoker: called by the security definer count
functions.';

revoke all on function private.stock_count_for_change(uuid, text)
from public, anon, authenticated;
