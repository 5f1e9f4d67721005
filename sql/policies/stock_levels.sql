-- RLS on public.stock_levels: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.stock_levels enable row level security;

drop policy if exists "members can read stock levels of their organizations"
on public.stock_levels;

create policy "members can read stock levels of their organizations"
on public.stock_levels
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
