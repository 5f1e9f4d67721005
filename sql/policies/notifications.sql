-- RLS on public.notifications: members read; clients have no write privilege
-- (security definer functions and triggers write it).
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.notifications enable row level security;

drop policy if exists "members can read notifications of their organizations"
on public.notifications;

create policy "members can read notifications of their organizations"
on public.notifications
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));
