-- RLS on public.stock_counts: members read; clients have no write privilege
-- (the security definer count functions write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.stock_counts enable row level security;

drop policy if exists "members can read stock counts of their organizations"
on public.stock_counts;

create policy "members can read stock counts of their organizations"
on public.stock_counts
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
