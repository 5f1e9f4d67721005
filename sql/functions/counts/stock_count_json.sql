create or replace function private.stock_count_json(count_id uuid)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select to_jsonb(c) || jsonb_build_object(
    'lines',
    coalesce(
      (
        select jsonb_agg(
          to_jsonb(l) - 'organization_id'
          || jsonb_build_object('sku', p.sku, 'lot_number', lt.lot_number)
          order by p.sku, lt.lot_number nulls first
        )
        from public.stock_count_lines as l
        inner join public.products as p on l.product_id = p.id
        left join public.lots as lt on l.lot_id = lt.id
        where l.count_id = c.id
      ),
      '[]'::jsonb
    )
  )
  from public.stock_counts as c
  where c.id = stock_count_json.count_id
$$;

comment on function private.stock_count_json(uuid) is
'A stock count as the count functions return it: the stock_counts row plus "lines", each with
the product''s sku and the lot number (null for a whole-product line), by sku.

Security invoker: called by the security definer count functions after their access checks.';

revoke all on function private.stock_count_json(uuid) from public, anon, authenticated;
