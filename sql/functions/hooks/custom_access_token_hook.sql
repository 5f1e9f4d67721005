create or replace function public.custom_access_token_hook(event jsonb)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  claims jsonb := coalesce(event -> 'claims', '{}'::jsonb);
  uid uuid := nullif(event ->> 'user_id', '')::uuid;
  chosen uuid := nullif(claims -> 'app_metadata' ->> 'organization_id', '')::uuid;
  found uuid;
  n int;
begin
  if chosen is not null and not exists (
    select from public.memberships as m
    where m.user_id = uid and m.organization_id = chosen
  ) then
    chosen := null;
  end if;
  if chosen is null then
    select min(m.organization_id::text)::uuid, count(*)
    into found, n
    from public.memberships as m
    where m.user_id = uid;
    if n = 1 then
      chosen := found;
    end if;
  end if;
  if chosen is null then
    claims := claims - 'organization_id';
  else
    claims := jsonb_set(claims, '{organization_id}', to_jsonb(chosen::text));
  end if;
  return jsonb_set(event, '{claims}', claims);
end
$$;

comment on function public.custom_access_token_hook(jsonb) is
'Supabase Auth custom access token hook (supabase/config.toml, [auth.hook.custom_access_token]):
adds the organization_id claim, the active organization: the one named in the user''s
app_metadata.organization_id if the user is still a member of it, else the user''s only
membership; with neither, the claim is removed. RLS never depends on the claim
(private.active_organization checks membership again); the proxy uses it as the default
organization for writes.

Security definer because Supabase Auth runs it as supabase_auth_admin, which has no access to
public.memberships; it only answers about the user named in the event. Only
supabase_auth_admin may execute it (where that role exists: hosted Supabase).';

revoke all on function public.custom_access_token_hook(jsonb) from public, anon, authenticated;

do $$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    grant usage on schema public to supabase_auth_admin;
    grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
  end if;
end
$$;
