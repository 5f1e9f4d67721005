-- NIMBUS inventory schema: tenancy, catalog, stock ledger, orders, settings, notifications, audit.
--
-- Conventions (docs: DESIGN.md sections 4-5, STYLE.md rules 1-9):
-- * Every inventory row carries organization_id. Rows that point at another organization-scoped
--   row do so with a composite foreign key (organization_id, x_id) -> x (organization_id, id),
--   so a reference can never cross tenants. MATCH SIMPLE (the default) lets a null x_id pass.
-- * Organization deletion cascades; references between inventory rows are restrictive.
-- * RLS is enabled on every table here and no policy is created: access is denied until
--   sql/policies adds one. Table privileges are granted explicitly below; Supabase's default
--   privileges (which grant everything to anon) are revoked, not relied on.
-- * The stock tables (stock_levels, stock_movements, lots) and the order tables are written only
--   by the business functions in sql/functions, so clients get SELECT on them and nothing more.

-- Schemas ---------------------------------------------------------------------------------------

create schema if not exists private;

comment on schema private is
'NIMBUS internals: RLS helpers, counters, materialized views. Not exposed by PostgREST.';

revoke all on schema private from public;

-- RLS helpers in private run from policies as the calling role, which needs usage on the schema.
grant usage on schema private to authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;

-- Settings validation (used by a check constraint below) ----------------------------------------
-- A check constraint can only call a function that exists when the constraint is created, and
-- migrations run before sql/functions. So this migration creates private.settings_valid, and
-- sql/functions/settings/settings_valid.sql holds the canonical, identical definition that every
-- `nimbus migrate` re-applies (create or replace keeps the constraint's dependency intact). Edit
-- that file, not this one; keep the function immutable and only ever make it stricter with a
-- migration that re-validates existing rows.

create or replace function private.settings_valid(value jsonb)
returns boolean
language sql
immutable
strict
parallel safe
security invoker
set search_path = ''
as $$
  select case
    when jsonb_typeof(settings_valid.value) <> 'object' then false
    else (
      select coalesce(bool_and(coalesce(
        case e.key
          when 'currency' then s.txt ~ '^[A-Z]{3}$'
          when 'timezone' then s.txt ~ '^[A-Za-z][A-Za-z0-9_+/-]{0,63}$'
          when 'default_low_stock_threshold' then
            s.num >= 0 and s.num <= 2147483647 and s.num = trunc(s.num)
          when 'expiry_warning_days' then s.num between 1 and 365 and s.num = trunc(s.num)
          when 'forecast_alpha' then s.num > 0 and s.num <= 1
          when 'forecast_horizon_days' then s.num between 1 and 365 and s.num = trunc(s.num)
          when 'service_level' then s.num > 0.5 and s.num <= 0.9999
          else false
        end,
        false
      )), true)
      from jsonb_each(settings_valid.value) as e (key, val)
      cross join lateral (
        select
          case when jsonb_typeof(e.val) = 'string' then e.val #>> '{}' end as txt,
          case when jsonb_typeof(e.val) = 'number' then e.val::numeric end as num
      ) as s
    )
  end
$$;

comment on function private.settings_valid(jsonb) is
'True when an organization settings document has only known keys with valid values.

Keys (all optional): currency (ISO 4217 code, ^[A-Z]{3}$), timezone (IANA-shaped name, not looked
up: pg_timezone_names is not immutable), default_low_stock_threshold (integer >= 0),
expiry_warning_days (integer 1..365), forecast_alpha (number in (0, 1]), forecast_horizon_days
(integer 1..365), service_level (number in (0.5, 0.9999]). JSON null is not a valid value: remove
the key to fall back to the default. Used by the check constraint on public.settings.value.';

revoke all on function private.settings_valid(jsonb) from public, anon;

-- The check constraint runs with the privileges of whoever writes public.settings.
grant execute on function private.settings_valid(jsonb) to authenticated, service_role;

-- Tenancy ---------------------------------------------------------------------------------------

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 200),
  slug text not null unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.organizations is
'A tenant: every inventory row belongs to exactly one organization.';
comment on column public.organizations.slug is
'URL-safe unique handle: lowercase letters, digits and inner hyphens, 1 to 64 characters.';

create table public.memberships (
  user_id uuid not null references auth.users (id) on delete cascade,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  role text not null check (role in ('owner', 'admin', 'manager', 'staff', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (user_id, organization_id)
);

comment on table public.memberships is
'Who belongs to which organization, and with which role. RLS helpers in private read it.';
comment on column public.memberships.role is
'Rank order viewer < staff < manager < admin < owner (see private.role_rank).';

create index memberships_organization_id_idx on public.memberships (organization_id);

-- Per-organization order number counter: bumped by the order functions with
-- `insert ... on conflict (organization_id) do update set last_number = last_number + 1
-- returning last_number`, which serializes concurrent creators of one organization only.
create table private.order_numbers (
  organization_id uuid primary key references public.organizations (id) on delete cascade,
  last_number bigint not null default 0 check (last_number >= 0)
);

comment on table private.order_numbers is
'Last human order number handed out per organization (orders.number); internal, no grants.';

-- Catalog ---------------------------------------------------------------------------------------

create table public.locations (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  code text not null check (char_length(code) between 1 and 32),
  kind text not null check (kind in ('warehouse', 'store')),
  address text check (char_length(address) <= 1000),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, code),
  unique (organization_id, id)
);

comment on table public.locations is 'A place that holds stock: a warehouse or a store.';
comment on column public.locations.code is
'Short code unique within the organization, e.g. WH1; shown on labels and reports.';
comment on column public.locations.active is
'Inactive locations keep their history but take no new stock movements.';

create table public.categories (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  parent_id uuid,
  name text not null check (char_length(name) between 1 and 200),
  description text check (char_length(description) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint categories_not_own_parent check (parent_id <> id),
  constraint categories_name_key unique nulls not distinct (organization_id, parent_id, name),
  unique (organization_id, id),
  constraint categories_parent_fkey foreign key (organization_id, parent_id)
  references public.categories (organization_id, id) on delete restrict
);

comment on table public.categories is
'Product categories, nestable; names are unique among siblings (top level included).';
comment on column public.categories.parent_id is
'Enclosing category in the same organization, null at the top level. Longer cycles than a
self-reference are not prevented here.';

create index categories_parent_id_idx on public.categories (organization_id, parent_id)
where parent_id is not null;

create table public.suppliers (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  contact_name text check (char_length(contact_name) <= 200),
  email text check (char_length(email) <= 320 and email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  phone text check (char_length(phone) <= 50),
  lead_time_days integer not null default 7 check (lead_time_days between 0 and 365),
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  notes text check (char_length(notes) <= 2000),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, name),
  unique (organization_id, id)
);

comment on table public.suppliers is 'Vendors that purchase orders are placed with.';
comment on column public.suppliers.lead_time_days is
'Days from purchase order to receipt; reorder suggestions cover this period.';
comment on column public.suppliers.currency is 'ISO 4217 code the supplier invoices in.';

create table public.products (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  category_id uuid,
  supplier_id uuid,
  sku text not null check (char_length(sku) between 1 and 64),
  barcode text check (char_length(barcode) between 1 and 64),
  name text not null check (char_length(name) between 1 and 200),
  description text check (char_length(description) <= 2000),
  unit text not null default 'each' check (char_length(unit) between 1 and 32),
  price numeric(12, 2) not null default 0 check (price >= 0),
  unit_cost numeric(14, 4) not null default 0 check (unit_cost >= 0),
  reorder_point integer check (reorder_point >= 0),
  safety_stock integer not null default 0 check (safety_stock >= 0),
  low_stock_threshold integer check (low_stock_threshold >= 0),
  active boolean not null default true,
  archived_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint products_archived_inactive check (archived_at is null or not active),
  unique (organization_id, sku),
  unique (organization_id, id),
  constraint products_category_fkey foreign key (organization_id, category_id)
  references public.categories (organization_id, id) on delete restrict,
  constraint products_supplier_fkey foreign key (organization_id, supplier_id)
  references public.suppliers (organization_id, id) on delete restrict
);

comment on table public.products is
'Stock-keeping units. Archived (soft-deleted) products keep their stock and order history.';
comment on column public.products.sku is 'Stock-keeping unit code, unique within the organization.';
comment on column public.products.barcode is
'GTIN/EAN/UPC or internal barcode, unique within the organization when present.';
comment on column public.products.unit is 'Unit of measure that quantities count, e.g. each, kg.';
comment on column public.products.price is 'Default selling price per unit.';
comment on column public.products.unit_cost is
'Current purchase cost per unit, used to value stock and suggest purchase orders.';
comment on column public.products.reorder_point is
'Available quantity at or below which a reorder is suggested; null = computed from demand.';
comment on column public.products.safety_stock is
'Buffer quantity kept on top of expected demand over the supplier lead time.';
comment on column public.products.low_stock_threshold is
'Quantity at or below which the product is low on stock; null = organization setting
default_low_stock_threshold.';
comment on column public.products.archived_at is
'Soft delete: when set, the product is hidden from the catalog and must be inactive.';

create unique index products_barcode_key on public.products (organization_id, barcode)
where barcode is not null;

create index products_category_id_idx on public.products (organization_id, category_id)
where category_id is not null;

create index products_supplier_id_idx on public.products (organization_id, supplier_id)
where supplier_id is not null;

-- Stock -----------------------------------------------------------------------------------------

create table public.stock_levels (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  product_id uuid not null,
  location_id uuid not null,
  on_hand numeric(14, 3) not null default 0 check (on_hand >= 0),
  reserved numeric(14, 3) not null default 0,
  updated_at timestamptz not null default now(),
  constraint stock_levels_reserved_check check (reserved >= 0 and reserved <= on_hand),
  primary key (product_id, location_id),
  constraint stock_levels_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict,
  constraint stock_levels_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict
);

comment on table public.stock_levels is
'Current quantity per product and location. Derived from stock_movements and maintained only
by the stock functions, in the same transaction as the ledger row.';
comment on column public.stock_levels.on_hand is
'Physical quantity at the location; never negative.';
comment on column public.stock_levels.reserved is
'Part of on_hand promised to confirmed sales orders; available = on_hand - reserved.';

create index stock_levels_location_id_idx on public.stock_levels (organization_id, location_id);

create table public.lots (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  product_id uuid not null,
  location_id uuid not null,
  lot_number text not null check (char_length(lot_number) between 1 and 100),
  expiry_date date,
  quantity numeric(14, 3) not null default 0 check (quantity >= 0),
  received_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (product_id, location_id, lot_number),
  unique (organization_id, id),
  unique (organization_id, product_id, location_id, id),
  constraint lots_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict,
  constraint lots_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict
);

comment on table public.lots is
'Batches of one product at one location, with an optional expiry date; picked FEFO
(first expiry, first out). Maintained only by the stock functions.';
comment on column public.lots.lot_number is 'Supplier or internal batch number.';
comment on column public.lots.quantity is 'Remaining quantity of this lot at its location.';

create index lots_fefo_idx on public.lots (product_id, location_id, expiry_date nulls last);

create index lots_expiry_idx on public.lots (organization_id, expiry_date)
where quantity > 0;

create index lots_location_id_idx on public.lots (organization_id, location_id);

-- Orders ----------------------------------------------------------------------------------------

create table public.orders (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  kind text not null check (kind in ('sales', 'purchase')),
  status text not null default 'draft'
  check (status in ('draft', 'confirmed', 'fulfilled', 'received', 'cancelled')),
  number bigint not null check (number > 0),
  supplier_id uuid,
  location_id uuid not null,
  customer_name text check (char_length(customer_name) between 1 and 200),
  notes text check (char_length(notes) <= 2000),
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  confirmed_at timestamptz,
  completed_at timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint orders_status_matches_kind check (
    (status <> 'fulfilled' or kind = 'sales')
    and (status <> 'received' or kind = 'purchase')
  ),
  constraint orders_supplier_only_purchase check (supplier_id is null or kind = 'purchase'),
  constraint orders_customer_only_sales check (customer_name is null or kind = 'sales'),
  constraint orders_confirmed_at_check check (
    (status = 'draft' and confirmed_at is null)
    or (status in ('confirmed', 'fulfilled', 'received') and confirmed_at is not null)
    or status = 'cancelled'
  ),
  constraint orders_completed_at_check check (
    (completed_at is not null) = (status in ('fulfilled', 'received'))
  ),
  constraint orders_cancelled_at_check check (
    (cancelled_at is not null) = (status = 'cancelled')
  ),
  unique (organization_id, number),
  unique (organization_id, id),
  constraint orders_supplier_fkey foreign key (organization_id, supplier_id)
  references public.suppliers (organization_id, id) on delete restrict,
  constraint orders_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict
);

comment on table public.orders is
'Sales orders (stock out) and purchase orders (stock in). Created and moved through their
states only by the order functions: draft -> confirmed -> fulfilled (sales) or received
(purchase); draft or confirmed -> cancelled.';
comment on column public.orders.number is
'Human order number, unique and increasing per organization (private.order_numbers).';
comment on column public.orders.supplier_id is 'Supplier of a purchase order; null for sales.';
comment on column public.orders.location_id is 'Location whose stock the order moves.';
comment on column public.orders.customer_name is 'Free-text customer of a sales order.';
comment on column public.orders.currency is 'ISO 4217 code of the order''s prices.';
comment on column public.orders.created_by is 'auth.uid() of the user who created the order.';
comment on column public.orders.confirmed_at is
'When the order was confirmed (stock reserved for sales); set for every confirmed order.';
comment on column public.orders.completed_at is 'When the order was fulfilled or received.';
comment on column public.orders.cancelled_at is 'When the order was cancelled.';

create index orders_status_idx on public.orders (organization_id, status, created_at desc);

create index orders_kind_idx on public.orders (organization_id, kind, created_at desc);

create index orders_supplier_id_idx on public.orders (organization_id, supplier_id)
where supplier_id is not null;

create index orders_location_id_idx on public.orders (organization_id, location_id);

create index orders_created_by_idx on public.orders (created_by) where created_by is not null;

create table public.order_items (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  order_id uuid not null,
  product_id uuid not null,
  line_no integer not null check (line_no > 0),
  quantity numeric(14, 3) not null check (quantity > 0),
  unit_price numeric(12, 2) not null default 0 check (unit_price >= 0),
  unit_cost numeric(14, 4) check (unit_cost >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (order_id, product_id),
  unique (order_id, line_no),
  constraint order_items_order_fkey foreign key (organization_id, order_id)
  references public.orders (organization_id, id) on delete cascade,
  constraint order_items_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict
);

comment on table public.order_items is 'Lines of an order: one per product.';
comment on column public.order_items.line_no is 'Position of the line in the order, from 1.';
comment on column public.order_items.unit_price is
'Selling price per unit (sales) or agreed purchase price per unit (purchase).';
comment on column public.order_items.unit_cost is
'Cost per unit recorded when stock moved, for margin and valuation; null until then.';

create index order_items_product_id_idx on public.order_items (organization_id, product_id);

-- Ledger ----------------------------------------------------------------------------------------

create table public.stock_movements (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  product_id uuid not null,
  location_id uuid not null,
  lot_id uuid,
  kind text not null check (kind in (
    'receipt', 'sale', 'adjustment', 'transfer_out', 'transfer_in', 'return', 'write_off'
  )),
  quantity numeric(14, 3) not null check (quantity <> 0),
  unit_cost numeric(14, 4) check (unit_cost >= 0),
  order_id uuid,
  reason text check (char_length(reason) <= 500),
  transfer_id uuid,
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  constraint stock_movements_sign_matches_kind check (
    (kind in ('receipt', 'transfer_in', 'return') and quantity > 0)
    or (kind in ('sale', 'transfer_out', 'write_off') and quantity < 0)
    or kind = 'adjustment'
  ),
  constraint stock_movements_transfer_id_check check (
    (transfer_id is not null) = (kind in ('transfer_out', 'transfer_in'))
  ),
  constraint stock_movements_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict,
  constraint stock_movements_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict,
  constraint stock_movements_lot_fkey foreign key (organization_id, product_id, location_id, lot_id)
  references public.lots (organization_id, product_id, location_id, id) on delete restrict,
  constraint stock_movements_order_fkey foreign key (organization_id, order_id)
  references public.orders (organization_id, id) on delete restrict
);

comment on table public.stock_movements is
'Append-only stock ledger: one row per change of stock, written by the stock and order
functions in the same transaction as stock_levels. The sum of quantity per product and
location equals stock_levels.on_hand.';
comment on column public.stock_movements.lot_id is
'Lot moved, when the product is lot-tracked; must be a lot of the same product and location.';
comment on column public.stock_movements.quantity is
'Signed: positive into stock (receipt, transfer_in, return), negative out of stock (sale,
transfer_out, write_off); adjustment either way.';
comment on column public.stock_movements.unit_cost is 'Cost per unit of this movement, if known.';
comment on column public.stock_movements.order_id is 'Order that caused the movement, if any.';
comment on column public.stock_movements.reason is 'Why: free text for adjustments and write-offs.';
comment on column public.stock_movements.transfer_id is
'Pairs the transfer_out and transfer_in rows of one transfer; set exactly for those kinds.';
comment on column public.stock_movements.created_by is
'auth.uid() of the caller; not a foreign key, so the ledger outlives deleted users.';

create index stock_movements_created_at_idx on public.stock_movements (
  organization_id, created_at desc
);

create index stock_movements_product_idx on public.stock_movements (
  product_id, location_id, created_at
);

create index stock_movements_location_idx on public.stock_movements (
  organization_id, location_id, created_at desc
);

create index stock_movements_order_id_idx on public.stock_movements (order_id)
where order_id is not null;

create index stock_movements_lot_id_idx on public.stock_movements (lot_id)
where lot_id is not null;

create index stock_movements_transfer_id_idx on public.stock_movements (transfer_id)
where transfer_id is not null;

-- Idempotency -----------------------------------------------------------------------------------

create table public.idempotency_keys (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  key text not null check (char_length(key) between 1 and 255),
  user_id uuid not null references auth.users (id) on delete cascade,
  request_hash text not null check (char_length(request_hash) between 1 and 128),
  order_id uuid,
  response jsonb,
  created_at timestamptz not null default now(),
  primary key (organization_id, key),
  constraint idempotency_keys_order_fkey foreign key (organization_id, order_id)
  references public.orders (organization_id, id) on delete cascade
);

comment on table public.idempotency_keys is
'Results of create_order per client Idempotency-Key (IETF httpapi Idempotency-Key header draft):
a retry with the same key and the same request_hash gets the stored response; the same key
with a different request is rejected (422); rows may be purged after 24 hours.';
comment on column public.idempotency_keys.key is 'The client''s Idempotency-Key value.';
comment on column public.idempotency_keys.user_id is 'User who first sent the key.';
comment on column public.idempotency_keys.request_hash is
'Hash of the canonical request body, to detect a key reused for a different request.';
comment on column public.idempotency_keys.order_id is 'Order created by the first request.';
comment on column public.idempotency_keys.response is 'Response returned to the first request.';

create index idempotency_keys_order_id_idx on public.idempotency_keys (order_id)
where order_id is not null;

create index idempotency_keys_user_id_idx on public.idempotency_keys (user_id);

create index idempotency_keys_created_at_idx on public.idempotency_keys (created_at);

-- Settings --------------------------------------------------------------------------------------

create table public.settings (
  organization_id uuid primary key references public.organizations (id) on delete cascade,
  value jsonb not null default '{}'::jsonb check (private.settings_valid(value)),
  updated_at timestamptz not null default now()
);

comment on table public.settings is
'Per-organization settings document; missing keys take their defaults.';
comment on column public.settings.value is
'Only these keys: currency, timezone, default_low_stock_threshold, expiry_warning_days,
forecast_alpha, forecast_horizon_days, service_level (see private.settings_valid).';

-- Notifications ---------------------------------------------------------------------------------

create table public.notifications (
  id bigint generated always as identity primary key,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  kind text not null check (kind in ('low_stock', 'order_status', 'lot_expiring')),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  created_at timestamptz not null default now()
);

comment on table public.notifications is
'Events shown to every member of an organization; written by functions and triggers.';
comment on column public.notifications.payload is
'Kind-specific details, e.g. product_id and on_hand for low_stock.';

create index notifications_organization_id_idx on public.notifications (organization_id, id);

create table public.notification_reads (
  user_id uuid not null references auth.users (id) on delete cascade,
  notification_id bigint not null references public.notifications (id) on delete cascade,
  read_at timestamptz not null default now(),
  primary key (user_id, notification_id)
);

comment on table public.notification_reads is
'Which user has read which notification; a notification without a row here is unread.';

create index notification_reads_notification_id_idx on public.notification_reads (
  notification_id
);

-- Audit -----------------------------------------------------------------------------------------

create table public.audit_log (
  id bigint generated always as identity primary key,
  organization_id uuid,
  table_name text not null,
  row_id text not null,
  action text not null check (action in ('insert', 'update', 'delete')),
  actor uuid,
  actor_role text,
  old_values jsonb,
  new_values jsonb,
  created_at timestamptz not null default now(),
  constraint audit_log_values_match_action check (
    (old_values is null) = (action = 'insert')
    and (new_values is null) = (action = 'delete')
  )
);

comment on table public.audit_log is
'Append-only record of changes to audited tables, written by triggers.';
comment on column public.audit_log.organization_id is
'Organization of the changed row; not a foreign key, so the log outlives deleted rows.';
comment on column public.audit_log.row_id is 'Primary key of the changed row, as text.';
comment on column public.audit_log.actor is 'auth.uid() of the caller, null for internal jobs.';
comment on column public.audit_log.actor_role is 'Database role or JWT role of the caller.';
comment on column public.audit_log.old_values is 'Row before the change; null for insert.';
comment on column public.audit_log.new_values is 'Row after the change; null for delete.';

create index audit_log_organization_id_idx on public.audit_log (organization_id, created_at desc);

-- Row level security: on everywhere, policies come from sql/policies ----------------------------

alter table public.organizations enable row level security;
alter table public.memberships enable row level security;
alter table public.locations enable row level security;
alter table public.categories enable row level security;
alter table public.suppliers enable row level security;
alter table public.products enable row level security;
alter table public.stock_levels enable row level security;
alter table public.lots enable row level security;
alter table public.orders enable row level security;
alter table public.order_items enable row level security;
alter table public.stock_movements enable row level security;
alter table public.idempotency_keys enable row level security;
alter table public.settings enable row level security;
alter table public.notifications enable row level security;
alter table public.notification_reads enable row level security;
alter table public.audit_log enable row level security;

-- Privileges: start from nothing (Supabase's default privileges grant all to anon), then grant
-- what a client path needs. Identity columns need no sequence grant (PostgreSQL does not check
-- sequence privileges for them), and authenticated inserts into none of them anyway.

revoke all on table
public.organizations,
public.memberships,
public.locations,
public.categories,
public.suppliers,
public.products,
public.stock_levels,
public.lots,
public.orders,
public.order_items,
public.stock_movements,
public.idempotency_keys,
public.settings,
public.notifications,
public.notification_reads,
public.audit_log
from public, anon, authenticated, service_role;

revoke all on table private.order_numbers from public, anon, authenticated, service_role;

-- Edited directly through PostgREST, as RLS policies allow.
grant select, insert, update, delete on table
public.organizations,
public.memberships,
public.locations,
public.categories,
public.suppliers,
public.products
to authenticated, service_role;

grant select, insert, update on table public.settings to authenticated, service_role;

grant select, insert, delete on table public.notification_reads to authenticated, service_role;

-- Read-only to clients: written only by the stock, order and audit functions and triggers.
grant select on table
public.stock_levels,
public.lots,
public.orders,
public.order_items,
public.stock_movements,
public.idempotency_keys,
public.notifications,
public.audit_log
to authenticated, service_role;

-- Retention jobs run as service_role.
grant delete on table public.idempotency_keys, public.notifications to service_role;
