-- Inventory truth (issue 12): finite numbers everywhere, per-product quantity decimals, lot
-- status, costs as facts in the ledger (moving weighted average per product, FIFO layers per
-- location), and the movement kinds a warehouse needs.
--
-- NaN compares equal to itself and sorts above every number in PostgreSQL, so `x >= 0` lets it
-- through: every numeric column gets an explicit `<> 'NaN'` check. Infinity cannot be stored in
-- a column with a precision (numeric(14, 3)), but a function parameter has none: the functions
-- check their arguments with private.check_number before anything is stored or rounded.

-- Quantities: how many decimals a product's unit takes -----------------------------------------

alter table public.products
add column quantity_decimals smallint
check (quantity_decimals between 0 and 3);

comment on column public.products.quantity_decimals is
'Decimals a quantity of this product may carry (0-3); null = from the unit: counted units
(each, pcs, unit, box, pack, case, pair, ...) take 0, measured ones (kg, m, l, ...) take 3.';

-- Selling price keeps exactly what the client sent: a price with more than two decimals is
-- refused rather than rounded (numeric(12, 2) would round 9.999 to 10.00 silently).
alter table public.products alter column price type numeric;

alter table public.products
add constraint products_price_finite check (
  price <> 'NaN'::numeric and price = round(price, 2) and price < 10000000000
),
add constraint products_unit_cost_finite check (unit_cost <> 'NaN'::numeric);

comment on column public.products.unit_cost is
'Catalog (standard) cost per unit, edited by hand. Not the cost of stock: that is the moving
weighted average in private.product_costs and the FIFO layers, both driven by the ledger.
Used where nothing better is known (stock added before any receipt).';

comment on column public.products.price is
'Default selling price per unit: at most 2 decimals, finite, >= 0.';

-- Finite quantities and costs in the ledger tables (written by functions, checked here too) ------

alter table public.stock_levels
add constraint stock_levels_finite check (
  on_hand <> 'NaN'::numeric and reserved <> 'NaN'::numeric
);

alter table public.lots
add constraint lots_quantity_finite check (quantity <> 'NaN'::numeric);

alter table public.order_items
add constraint order_items_finite check (
  quantity <> 'NaN'::numeric
  and unit_price <> 'NaN'::numeric
  and unit_cost <> 'NaN'::numeric
);

-- Movements: their value under each costing method, and returns in both directions -------------

alter table public.stock_movements
add column wac_value numeric,
add column fifo_value numeric,
add constraint stock_movements_finite check (
  quantity <> 'NaN'::numeric
  and unit_cost <> 'NaN'::numeric
  and wac_value <> 'NaN'::numeric
  and fifo_value <> 'NaN'::numeric
),
add constraint stock_movements_value_sign check (
  (wac_value is null or wac_value = 0 or sign(wac_value) = sign(quantity))
  and (fifo_value is null or fifo_value = 0 or sign(fifo_value) = sign(quantity))
);

alter table public.stock_movements drop constraint stock_movements_sign_matches_kind;

alter table public.stock_movements
add constraint stock_movements_sign_matches_kind check (
  (kind in ('receipt', 'transfer_in') and quantity > 0)
  or (kind in ('sale', 'transfer_out', 'write_off') and quantity < 0)
  or kind in ('adjustment', 'return')
);

comment on column public.stock_movements.quantity is
'Signed: positive into stock (receipt, transfer_in, a customer return), negative out of stock
(sale, transfer_out, write_off, a return to the supplier); adjustment either way.';
comment on column public.stock_movements.unit_cost is
'Cost per unit: what an inbound movement came in at; the weighted average cost an outbound
movement took out.';
comment on column public.stock_movements.wac_value is
'Signed value of the movement at moving weighted-average cost (out: the cost of goods it took,
negative). Null on rows written before costing existed.';
comment on column public.stock_movements.fifo_value is
'Signed value of the movement at FIFO cost: in, the layer it created; out, the layers it
consumed (private.cost_layer_takes). Null on rows written before costing existed.';

-- Lots have a status ------------------------------------------------------------------------------

alter table public.lots
add column status text not null default 'available'
check (status in ('available', 'quarantined', 'expired'));

comment on column public.lots.status is
'available, quarantined (held back by hand) or expired (set by the expiry scan). Only an
available lot whose expiry_date is today or later can be reserved, picked, sold or moved.';

-- Costing ---------------------------------------------------------------------------------------

create table private.product_costs (
  product_id uuid primary key references public.products (id) on delete cascade,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  quantity numeric not null default 0 check (quantity >= 0 and quantity <> 'NaN'::numeric),
  value numeric not null default 0 check (value >= 0 and value <> 'NaN'::numeric),
  last_average numeric check (last_average >= 0 and last_average <> 'NaN'::numeric),
  updated_at timestamptz not null default now(),
  constraint product_costs_empty_has_no_value check (quantity > 0 or value = 0)
);

comment on table private.product_costs is
'Moving weighted-average cost per product (its organization''s stock at every location):
quantity = the sum of on_hand, value = what that stock cost. Written only by
private.apply_movement. average = value / quantity; last_average keeps it while out of stock.';
comment on column private.product_costs.value is
'Cost of the stock on hand, rounded to 4 decimals per movement; an outbound movement takes
value * taken / quantity, so the last unit out takes exactly what is left.';

create index product_costs_organization_id_idx on private.product_costs (organization_id);

create table private.cost_layers (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  product_id uuid not null references public.products (id) on delete cascade,
  location_id uuid not null references public.locations (id) on delete cascade,
  received_at timestamptz not null,
  quantity numeric not null check (quantity > 0 and quantity <> 'NaN'::numeric),
  remaining numeric not null check (
    remaining >= 0 and remaining <= quantity and remaining <> 'NaN'::numeric
  ),
  remaining_value numeric not null check (
    remaining_value >= 0 and remaining_value <> 'NaN'::numeric
  ),
  unit_cost numeric not null check (unit_cost >= 0 and unit_cost <> 'NaN'::numeric),
  movement_id bigint references public.stock_movements (id) on delete cascade,
  constraint cost_layers_empty_has_no_value check (remaining > 0 or remaining_value = 0)
);

comment on table private.cost_layers is
'FIFO cost layers: what each inbound movement brought to a location at which cost, and how much
of it is left. Outbound movements consume the oldest first (private.cost_layer_takes); a
transfer carries its layers, with their dates and costs, to the destination.';
comment on column private.cost_layers.received_at is
'When the stock first came into the organization (kept across transfers): the FIFO order.';
comment on column private.cost_layers.movement_id is
'Inbound movement that created the layer; null for the opening layers of this migration.';

create index cost_layers_fifo_idx on private.cost_layers (
  product_id, location_id, received_at, id
) where remaining > 0;

create index cost_layers_organization_id_idx on private.cost_layers (organization_id);

create index cost_layers_location_id_idx on private.cost_layers (location_id);

create index cost_layers_movement_id_idx on private.cost_layers (movement_id);

create table private.cost_layer_takes (
  movement_id bigint not null references public.stock_movements (id) on delete cascade,
  layer_id bigint not null references private.cost_layers (id) on delete cascade,
  quantity numeric not null check (quantity > 0 and quantity <> 'NaN'::numeric),
  value numeric not null check (value >= 0 and value <> 'NaN'::numeric),
  primary key (movement_id, layer_id)
);

comment on table private.cost_layer_takes is
'Which FIFO layers each outbound movement consumed, how much and at what value: the FIFO cost of
goods sold as a fact, and what a transfer carries to its destination.';

create index cost_layer_takes_layer_id_idx on private.cost_layer_takes (layer_id);

revoke all on table private.product_costs, private.cost_layers, private.cost_layer_takes
from public, anon, authenticated, service_role;

-- Opening balances: stock already on hand is costed at the catalog cost, as it was valued before.

insert into private.cost_layers (
  organization_id, product_id, location_id, received_at, quantity, remaining, remaining_value,
  unit_cost
)
select
  s.organization_id,
  s.product_id,
  s.location_id,
  s.updated_at as received_at,
  s.on_hand as quantity,
  s.on_hand as remaining,
  round(s.on_hand * p.unit_cost, 4) as remaining_value,
  p.unit_cost
from public.stock_levels as s
inner join public.products as p on s.product_id = p.id
where s.on_hand > 0;

-- The per-product WAC opening value is the sum of its layers, so both methods start equal.
with layered as (
  select
    cl.product_id,
    sum(cl.remaining) as units,
    sum(cl.remaining_value) as value
  from private.cost_layers as cl
  group by cl.product_id
)

insert into private.product_costs (product_id, organization_id, quantity, value, last_average)
select
  p.id as product_id,
  p.organization_id,
  coalesce(l.units, 0) as quantity,
  coalesce(l.value, 0) as value,
  p.unit_cost as last_average
from public.products as p
left join layered as l on p.id = l.product_id;

-- apply_movement gains parameters: drop the old signature so calls are not ambiguous.
drop function if exists private.apply_movement(
  uuid, uuid, uuid, text, numeric, uuid, numeric, uuid, text, uuid, numeric
);

-- take_stock returns the movement of each piece (a transfer_in takes its cost from it).
drop function if exists private.take_stock(
  uuid, uuid, uuid, text, numeric, numeric, numeric, uuid, text, uuid
);

-- adjust_stock takes the cost of stock it adds.
drop function if exists public.adjust_stock(uuid, uuid, numeric, text, text, date);
