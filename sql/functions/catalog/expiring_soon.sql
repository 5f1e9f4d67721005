create or replace function public.expiring_soon(
  days integer default null,
  organization_id uuid default null
)
returns table (
  lot_id uuid,
  product_id uuid,
  sku text,
  name text,
  location_id uuid,
  lot_number text,
  expiry_date date,
  quantity numeric,
  days_left integer
)
language sql
stable
security invoker
set search_path = ''
as $$
  with org as (
    select o.id, private.organization_today(o.id) as today
    from (select private.active_organization(expiring_soon.organization_id) as id) as o
  ),
  horizon as (
    select coalesce(
      expiring_soon.days,
      (
        select (st.value ->> 'expiry_warning_days')::integer
        from public.settings as st, org
        where st.organization_id = org.id
      ),
      30
    ) as days
  )
  select
    l.id as lot_id,
    p.id as product_id,
    p.sku,
    p.name,
    l.location_id,
    l.lot_number,
    l.expiry_date,
    l.quantity,
    l.expiry_date - org.today as days_left
  from org
  cross join horizon
  inner join public.lots as l on l.organization_id = org.id
  inner join public.products as p on p.id = l.product_id
  where
    l.quantity > 0
    and l.expiry_date is not null
    and private.lot_usable(l.status, l.expiry_date, org.today)
    and l.expiry_date <= org.today + horizon.days
  order by l.expiry_date, p.sku, l.location_id
$$;

comment on function public.expiring_soon(integer, uuid) is
'Usable lots with stock that expire within days (today included), soonest first.

Days are the organization''s (private.organization_today). Expired lots (past their date, or
status expired) and quarantined lots are not listed: they
can no longer be sold, so they are not "expiring"; GET /api/v1/lots?status=expired lists
them. days defaults to the setting expiry_warning_days, else 30. organization_id defaults to the
caller''s active organization. Security invoker: RLS applies.';

revoke all on function public.expiring_soon(integer, uuid) from public, anon;

grant execute on function public.expiring_soon(integer, uuid) to authenticated, service_role;
