-- Low-stock alerts judged on available stock, once per crossing (issue 12), and lot_expired
-- notifications.
--
-- private.evaluate_low_stock (called by the stock_levels, lots, products and settings triggers)
-- compares each stock level's available quantity (private.available_quantity) with its
-- threshold and records the verdict here: a low_stock notification is written only when a level
-- turns low (a new level that starts low included), and the alert re-arms when it rises above.

create table private.low_stock_states (
  product_id uuid not null,
  location_id uuid not null,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  low boolean not null,
  since timestamptz not null default now(),
  primary key (product_id, location_id),
  constraint low_stock_states_stock_level_fkey foreign key (product_id, location_id)
  references public.stock_levels (product_id, location_id) on delete cascade
);

comment on table private.low_stock_states is
'Last low-stock verdict per stock level, so that a low_stock alert fires once per crossing.

low is true while the product is active and available <= its threshold there; since is when the
verdict last changed. Written only by private.evaluate_low_stock.';

create index low_stock_states_organization_id_idx on private.low_stock_states (organization_id);

revoke all on table private.low_stock_states from public, anon, authenticated, service_role;

-- Stock levels already low when this migration runs count as alerted (the old trigger judged
-- them on on_hand): only a new crossing alerts. Same rule as private.evaluate_low_stock, spelt
-- out because the functions are applied after the migrations.
insert into private.low_stock_states (product_id, location_id, organization_id, low)
select
  s.product_id,
  s.location_id,
  s.organization_id,
  p.active and p.archived_at is null
  and s.on_hand - s.reserved - coalesce(u.quantity, 0) <= coalesce(
    p.low_stock_threshold, (st.value ->> 'default_low_stock_threshold')::integer, 10
  ) as low
from public.stock_levels as s
inner join public.products as p on s.product_id = p.id
left join public.settings as st on s.organization_id = st.organization_id
left join lateral (
  select sum(l.quantity) as quantity
  from public.lots as l
  where
    l.product_id = s.product_id
    and l.location_id = s.location_id
    and l.quantity > 0
    and (l.status <> 'available' or l.expiry_date < current_date)
) as u on true;

-- A lot past its expiry date is set to expired by private.scan_expiring_lots and announced.
alter table public.notifications drop constraint notifications_kind_check;

alter table public.notifications
add constraint notifications_kind_check check (
  kind in ('low_stock', 'order_status', 'lot_expiring', 'lot_expired')
);
