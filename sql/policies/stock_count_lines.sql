-- RLS on public.stock_count_lines: members read; clients have no write privilege
-- (the security definer count functions write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.stock_count_lines enable row level security;

drop policy if exists "members can read stock count lines of their organizations"
on public.stock_count_lines;

create policy "members can read stock count lines of their organizations"
on public.stock_count_lines
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
