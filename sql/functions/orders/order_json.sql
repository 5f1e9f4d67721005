create or replace function private.order_json(order_id uuid)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select to_jsonb(o) || jsonb_build_object(
    'items',
    coalesce(
      (
        select jsonb_agg(to_jsonb(i) - 'organization_id' order by i.line_no)
        from public.order_items as i
        where i.order_id = o.id
      ),
      '[]'::jsonb
    )
  )
  from public.orders as o
  where o.id = order_json.order_id
$$;

comment on function private.order_json(uuid) is
'An order as the order functions return it: the orders row plus "items", its lines by line_no.

Security invoker: called by the security definer order functions after their access checks.';

revoke all on function private.order_json(uuid) from public, anon, authenticated;
