-- RLS on public.idempotency_keys: users read the keys they sent; create_order writes.
-- Re-applied by every `nimbus migrate`: drop, then create.

alter table public.idempotency_keys enable row level security;

drop policy if exists "users can read their own idempotency keys"
on public.idempotency_keys;

create policy "users can read their own idempotency keys"
on public.idempotency_keys
for select
to authenticated
using (
  user_id = (select auth.uid())
  and organization_id = any(array(select private.member_organizations()))
);
