-- RLS on public.stock_movements: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.stock_movements enable row level security;

drop policy if exists "members can read stock movements of their organizations"
on public.stock_movements;

create policy "members can read stock movements of their organizations"
on public.stock_movements
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
