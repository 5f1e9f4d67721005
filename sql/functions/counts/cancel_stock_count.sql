create or replace function public.cancel_stock_count(count_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  cnt public.stock_counts;
begin
  cnt := private.stock_count_for_change(cancel_stock_count.count_id, 'staff');
  if cnt.created_by is distinct from auth.uid()
    and not private.has_role(cnt.organization_id, 'manager') then
    raise sqlstate 'PT403' using
      message = 'only a manager or the user who opened it may cancel a stock count',
      detail = cnt.id::text,
      hint = 'forbidden';
  end if;
  update public.stock_counts as c
  set status = 'cancelled', cancelled_at = now()
  where c.id = cnt.id;
  return private.stock_count_json(cnt.id);
end
$$;

comment on function public.cancel_stock_count(uuid) is
'Cancels an open stock count (nothing is written to the ledger); returns it as JSON.

Allowed to managers and above, and to the staff member who opened it (PT403 forbidden
otherwise); PT404 not_found outside the caller''s organizations; PT409 count_closed once posted
or cancelled. Works at an inactive location. Security definer because clients may not write
counts directly; it checks membership and role itself.';

revoke all on function public.cancel_stock_count(uuid) from public, anon;

grant execute on function public.cancel_stock_count(uuid) to authenticated, service_role;
