-- RLS on public.order_items: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.order_items enable row level security;

drop policy if exists "members can read order items of their organizations"
on public.order_items;

create policy "members can read order items of their organizations"
on public.order_items
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
