create or replace function private.keep_an_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.role <> 'owner'
    or (tg_op = 'UPDATE' and new.role = 'owner' and new.organization_id = old.organization_id)
    or not exists (select from public.organizations as o where o.id = old.organization_id) then
    return null;
  end if;
  -- The member functions take this lock too: two owners leaving at once are serialized, and
  -- the second sees the first gone.
  perform pg_advisory_xact_lock(
    hashtextextended('nimbus.members:' || old.organization_id::text, 0)
  );
  if not exists (
    select from public.memberships as m
    where m.organization_id = old.organization_id and m.role = 'owner'
  ) then
    raise sqlstate 'PT409' using
      message = 'an organization keeps at least one owner',
      detail = old.organization_id::text,
      hint = 'last_owner';
  end if;
  return null;
end
$$;

comment on function private.keep_an_owner() is
'Trigger: no write to public.memberships (through /rest/v1, the dashboard or the member
functions) leaves an organization without an owner: PT409 last_owner.

After update or delete, per row. Deleting the organization itself (its memberships cascade) is
allowed. Security definer: the count must see every membership of the organization, also
after the caller removed its own (RLS would then hide the rest).';

revoke all on function private.keep_an_owner() from public, anon;

grant execute on function private.keep_an_owner() to authenticated, service_role;
