-- RLS on public.lots: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.lots enable row level security;

drop policy if exists "members can read lots of their organizations"
on public.lots;

create policy "members can read lots of their organizations"
on public.lots
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
