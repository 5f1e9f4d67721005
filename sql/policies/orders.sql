-- RLS on public.orders: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.orders enable row level security;

drop policy if exists "members can read orders of their organizations"
on public.orders;

create policy "members can read orders of their organizations"
on public.orders
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
