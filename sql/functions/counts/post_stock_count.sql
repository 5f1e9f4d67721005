create or replace function public.post_stock_count(count_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  cnt public.stock_counts;
  note text;
  stale jsonb;
  short jsonb;
  line record;
  lot record;
  piece numeric;
  rest numeric;
begin
  cnt := private.stock_count_for_change(post_stock_count.count_id, 'manager');
  if not exists (
    select from public.locations as l
    where l.id = cnt.location_id and l.active
  ) then
    raise sqlstate 'PT409' using
      message = 'location is inactive: it takes no stock movements',
      detail = cnt.location_id::text,
      hint = 'location_inactive';
  end if;
  if not exists (select from public.stock_count_lines as l where l.count_id = cnt.id) then
    raise sqlstate 'PT422' using
      message = 'a stock count needs at least one counted line to be posted',
      detail = 'lines',
      hint = 'validation_failed';
  end if;

  -- Lock the stock rows in (product_id, location_id) order, then the counted lots.
  perform
  from public.stock_levels as s
  where
    s.location_id = cnt.location_id
    and s.product_id in (
      select l.product_id from public.stock_count_lines as l
      where l.count_id = cnt.id
    )
  order by s.product_id
  for update;
  perform
  from public.lots as lt
  where lt.id in (
    select l.lot_id from public.stock_count_lines as l
    where l.count_id = cnt.id and l.lot_id is not null
  )
  order by lt.id
  for update;

  -- Lines whose stock moved after they were counted: report them all, write nothing.
  select
    jsonb_agg(
      jsonb_build_object(
        'line_id', l.id,
        'product_id', l.product_id,
        'sku', p.sku,
        'lot_number', lt.lot_number,
        'counted', l.counted,
        'on_hand_then', l.on_hand_at_count,
        'on_hand_now', q.now_quantity
      )
      order by p.sku, lt.lot_number nulls first
    )
  into stale
  from public.stock_count_lines as l
  inner join public.products as p on l.product_id = p.id
  left join public.lots as lt on l.lot_id = lt.id
  cross join lateral (
    select
      case
        when l.lot_id is not null then lt.quantity
        else coalesce((
          select s.on_hand
          from public.stock_levels as s
          where s.product_id = l.product_id and s.location_id = l.location_id
        ), 0)
      end as now_quantity
  ) as q
  where
    l.count_id = cnt.id
    and (
      q.now_quantity <> l.on_hand_at_count
      or exists (
        select from public.stock_movements as m
        where
          m.product_id = l.product_id
          and m.location_id = l.location_id
          and m.id > coalesce(l.last_movement_id, 0)
      )
    );
  if stale is not null then
    raise sqlstate 'PT409' using
      message = format(
        'stock moved after %s line(s) of the count were counted: count them again',
        jsonb_array_length(stale)
      ),
      detail = jsonb_build_object('lines', stale)::text,
      hint = 'count_stale';
  end if;

  -- A count may not go below what confirmed sales orders reserve (reserved <= on_hand).
  select
    jsonb_agg(
      jsonb_build_object(
        'product_id', v.product_id,
        'sku', p.sku,
        'on_hand', s.on_hand,
        'counted', s.on_hand + v.change,
        'reserved', s.reserved
      )
      order by p.sku
    )
  into short
  from (
    select l.product_id, sum(l.counted - l.on_hand_at_count) as change
    from public.stock_count_lines as l
    where l.count_id = cnt.id
    group by l.product_id
  ) as v
  inner join public.stock_levels as s
    on v.product_id = s.product_id and s.location_id = cnt.location_id
  inner join public.products as p on v.product_id = p.id
  where s.on_hand + v.change < s.reserved;
  if short is not null then
    raise sqlstate 'PT409' using
      message = 'counted less than confirmed sales orders reserve: cancel or change those '
      || 'orders first',
      detail = jsonb_build_object('products', short)::text,
      hint = 'count_below_reserved';
  end if;

  -- Every variance as an adjustment: per product, gains before losses.
  note := format('count %s', cnt.id);
  for line in
    select l.id, l.product_id, l.lot_id, l.counted - l.on_hand_at_count as variance
    from public.stock_count_lines as l
    where l.count_id = cnt.id
    order by l.product_id, l.counted < l.on_hand_at_count, l.lot_id nulls first
  loop
    if line.variance > 0 or (line.variance < 0 and line.lot_id is not null) then
      perform private.apply_movement(
        cnt.organization_id, line.product_id, cnt.location_id, 'adjustment', line.variance,
        lot_id => line.lot_id, reason => note
      );
    elsif line.variance < 0 then
      -- The whole product: usable stock first (FEFO, then untracked), then unusable lots.
      piece := least(
        -line.variance,
        greatest(private.available_quantity(line.product_id, cnt.location_id), 0)
      );
      if piece > 0 then
        perform t.taken
        from private.take_stock(
          cnt.organization_id, line.product_id, cnt.location_id, 'adjustment', piece,
          reason => note
        ) as t;
      end if;
      rest := -line.variance - piece;
      for lot in
        select lt.id, lt.quantity
        from public.lots as lt
        where
          lt.product_id = line.product_id
          and lt.location_id = cnt.location_id
          and lt.quantity > 0
          and not private.lot_usable(
            lt.status, lt.expiry_date, private.organization_today(lt.organization_id)
          )
        order by lt.expiry_date asc nulls last, lt.received_at asc, lt.id asc
        for update
      loop
        exit when rest <= 0;
        piece := least(lot.quantity, rest);
        perform private.apply_movement(
          cnt.organization_id, line.product_id, cnt.location_id, 'adjustment', -piece,
          lot_id => lot.id, reason => note
        );
        rest := rest - piece;
      end loop;
      if rest > 0 then
        raise sqlstate 'PT409' using
          message = 'insufficient stock',
          detail = line.product_id::text,
          hint = 'insufficient_stock';
      end if;
    end if;
    update public.stock_count_lines as l
    set variance = line.variance
    where l.id = line.id;
  end loop;

  update public.stock_counts as c
  set status = 'posted', posted_at = now(), posted_by = auth.uid()
  where c.id = cnt.id;
  return private.stock_count_json(cnt.id);
end
$$;

comment on function public.post_stock_count(uuid) is
'Posts an open stock count: every variance (counted - what the ledger held when counted) becomes
an adjustment movement with reason "count <id>", all in one transaction; returns the count.

Locks the stock rows in (product_id, location_id) order, then refuses the whole post, writing
nothing, when any line''s stock moved after it was counted (a newer movement of the product at
the location, or another quantity): PT409 count_stale, details {"lines": [{line_id, product_id,
sku, lot_number, counted, on_hand_then, on_hand_now}]}; record those lines again and post. A
count below what confirmed sales orders reserve is refused too (PT409 count_below_reserved,
details {"products": [{product_id, sku, on_hand, counted, reserved}]}): reserved stock stays
promised until its orders are cancelled or changed. Gains come in as untracked stock (a lot
line: into its lot) at the current average cost; a loss on a lot line leaves that lot, a loss on
a whole-product line leaves usable stock first (FEFO, then untracked) and then expired or
quarantined lots. Needs manager (PT403 forbidden); PT404 not_found outside the caller''s
organizations; PT409 count_closed once posted or cancelled; PT409 location_inactive; PT422
validation_failed for a count without lines. Security definer because clients may not write
the ledger; it checks membership and role itself.';

revoke all on function public.post_stock_count(uuid) from public, anon;

grant execute on function public.post_stock_count(uuid) to authenticated, service_role;
