create or replace function public.create_organization(name text, slug text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org public.organizations;
begin
  if auth.uid() is null then
    raise sqlstate 'PT401' using message = 'authentication required', hint = 'forbidden';
  end if;
  insert into public.organizations as o (name, slug)
  values (create_organization.name, create_organization.slug)
  returning o.* into org;
  insert into public.memberships (user_id, organization_id, role)
  values (auth.uid(), org.id, 'owner');
  insert into public.settings (organization_id) values (org.id);
  return to_jsonb(org);
end
$$;

comment on function public.create_organization(text, text) is
'Creates an organization with the caller as its owner and default settings; returns it.

The only way to create an organization: a plain insert could not be read back under RLS before
the owner membership exists. A taken slug is a unique violation (HTTP 409). Security definer
because it writes the first membership, which RLS reserves to admins of the organization.';

revoke all on function public.create_organization(text, text) from public, anon;

grant execute on function public.create_organization(text, text) to authenticated, service_role;
