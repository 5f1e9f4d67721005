-- Stock counts (issue 12): a count session per location. Staff open it and record what they
-- counted; a manager posts it, which writes every variance as an adjustment movement in one
-- transaction, or refuses the whole post when stock moved after a line was counted.
--
-- Both tables are written only by the functions in sql/functions/counts (security definer), so
-- clients get SELECT and nothing more; RLS lets members read their organization's rows
-- (sql/policies/stock_counts.sql, stock_count_lines.sql).

create table public.stock_counts (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  location_id uuid not null,
  status text not null default 'open' check (status in ('open', 'posted', 'cancelled')),
  note text check (char_length(note) <= 2000),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  posted_by uuid references auth.users (id) on delete set null,
  opened_at timestamptz not null default now(),
  posted_at timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint stock_counts_posted_at_check check (
    (posted_at is not null) = (status = 'posted')
    and (posted_by is null or status = 'posted')
  ),
  constraint stock_counts_cancelled_at_check check (
    (cancelled_at is not null) = (status = 'cancelled')
  ),
  unique (organization_id, id),
  unique (organization_id, id, location_id),
  constraint stock_counts_location_fkey foreign key (organization_id, location_id)
  references public.locations (organization_id, id) on delete restrict
);

comment on table public.stock_counts is
'A stock count session at one location: open -> posted (every variance written to the ledger
as one atomic set of adjustment movements) or open -> cancelled. Written only by the count
functions (open_stock_count, record_stock_count, post_stock_count, cancel_stock_count).';
comment on column public.stock_counts.location_id is
'Location counted; every line of the count is at this location.';
comment on column public.stock_counts.status is
'open (lines may be recorded), posted (variances are in the ledger) or cancelled; posted and
cancelled are final.';
comment on column public.stock_counts.note is 'Free text, e.g. which aisle or why.';
comment on column public.stock_counts.created_by is 'auth.uid() of the user who opened the count.';
comment on column public.stock_counts.posted_by is 'auth.uid() of the manager who posted it.';
comment on column public.stock_counts.opened_at is 'When the count was opened.';
comment on column public.stock_counts.posted_at is
'When the variances were written to the ledger; set exactly for posted counts.';
comment on column public.stock_counts.cancelled_at is
'When the count was cancelled; set exactly for cancelled counts.';

create index stock_counts_status_idx on public.stock_counts (
  organization_id, status, created_at desc
);

create index stock_counts_location_id_idx on public.stock_counts (
  organization_id, location_id, created_at desc
);

create index stock_counts_created_by_idx on public.stock_counts (created_by)
where created_by is not null;

create index stock_counts_posted_by_idx on public.stock_counts (posted_by)
where posted_by is not null;

create table public.stock_count_lines (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  count_id uuid not null,
  location_id uuid not null,
  product_id uuid not null,
  lot_id uuid,
  counted numeric(14, 3) not null check (
    counted >= 0 and counted < 100000000000 and counted <> 'NaN'::numeric
  ),
  on_hand_at_count numeric(14, 3) not null check (
    on_hand_at_count >= 0 and on_hand_at_count <> 'NaN'::numeric
  ),
  last_movement_id bigint,
  variance numeric(14, 3) check (variance <> 'NaN'::numeric),
  counted_by uuid default auth.uid() references auth.users (id) on delete set null,
  counted_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint stock_count_lines_product_lot_key unique nulls not distinct (
    count_id, product_id, lot_id
  ),
  unique (organization_id, id),
  constraint stock_count_lines_count_fkey foreign key (organization_id, count_id, location_id)
  references public.stock_counts (organization_id, id, location_id) on delete cascade,
  constraint stock_count_lines_product_fkey foreign key (organization_id, product_id)
  references public.products (organization_id, id) on delete restrict,
  constraint stock_count_lines_lot_fkey foreign key (
    organization_id, product_id, location_id, lot_id
  )
  references public.lots (organization_id, product_id, location_id, id) on delete restrict
);

comment on table public.stock_count_lines is
'What was counted in a stock count: one line per product (the whole quantity at the count''s
location) or per lot of a product, with what the ledger said when it was counted. Recording a
line again replaces it and its snapshot. Written only by the count functions.';
comment on column public.stock_count_lines.location_id is
'The count''s location (the composite foreign key makes it equal to stock_counts.location_id).';
comment on column public.stock_count_lines.lot_id is
'Lot counted; null = the product''s whole quantity at the location. One count holds either one
whole line or lot lines for a product, not both.';
comment on column public.stock_count_lines.counted is
'Quantity physically counted: finite, >= 0, with the product''s quantity decimals.';
comment on column public.stock_count_lines.on_hand_at_count is
'What the ledger held when the line was counted: the lot''s quantity for a lot line, else the
product''s on_hand at the location (0 without a stock row).';
comment on column public.stock_count_lines.last_movement_id is
'Newest stock_movements row of the product at the location when the line was counted (null:
none yet; not a foreign key, like audit references). A newer one at posting time means stock
moved after the count: the post is refused.';
comment on column public.stock_count_lines.variance is
'counted - on_hand_at_count, written to the ledger as an adjustment when the count was posted
(0: nothing written); null until then.';
comment on column public.stock_count_lines.counted_by is
'auth.uid() of the user who recorded the line (last).';
comment on column public.stock_count_lines.counted_at is 'When the line was recorded (last).';

create index stock_count_lines_product_id_idx on public.stock_count_lines (
  organization_id, product_id
);

create index stock_count_lines_location_id_idx on public.stock_count_lines (
  organization_id, location_id
);

create index stock_count_lines_count_id_idx on public.stock_count_lines (
  organization_id, count_id, location_id
);

create index stock_count_lines_lot_id_idx on public.stock_count_lines (lot_id)
where lot_id is not null;

create index stock_count_lines_counted_by_idx on public.stock_count_lines (counted_by)
where counted_by is not null;

alter table public.stock_counts enable row level security;
alter table public.stock_count_lines enable row level security;

revoke all on table public.stock_counts, public.stock_count_lines
from public, anon, authenticated, service_role;

-- Read-only to clients: written only by the count functions.
grant select on table public.stock_counts, public.stock_count_lines
to authenticated, service_role;
