create or replace function public.members(organization_id uuid default null)
returns table (
  user_id uuid,
  email text,
  role text,
  created_at timestamptz,
  updated_at timestamptz
)
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  org uuid := private.active_organization(members.organization_id);
begin
  return query
  select m.user_id, u.email::text, m.role, m.created_at, m.updated_at
  from public.memberships as m
  left join auth.users as u on m.user_id = u.id
  where m.organization_id = org
  order by private.role_rank(m.role) desc, u.email asc, m.user_id asc;
end
$$;

comment on function public.members(uuid) is
'The members of the chosen organization (organization_id, else the active one) with their
e-mail addresses, highest role first. Any member may list them; PT403 forbidden for another
organization. Security definer because the e-mail addresses live in auth.users, which clients
cannot read; it answers only for an organization the caller belongs to.';

revoke all on function public.members(uuid) from public, anon;

grant execute on function public.members(uuid) to authenticated, service_role;
