create or replace function public.refresh_analytics(organization_id uuid default null)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  org uuid;
  last_refresh timestamptz;
  announced integer;
begin
  if coalesce(auth.role(), '') <> 'service_role' then
    org := private.active_organization(refresh_analytics.organization_id);
    if not private.has_role(org, 'admin') then
      raise sqlstate 'PT403' using
        message = 'only admins and owners can refresh analytics',
        detail = org::text,
        hint = 'forbidden';
    end if;
    select min(r.refreshed_at) into last_refresh from private.analytics_refreshes as r;
    if last_refresh > now() - interval '1 minute' then
      return jsonb_build_object(
        'as_of', last_refresh,
        'refreshed', false,
        'views', '[]'::jsonb,
        'expiring_lots_announced', private.scan_expiring_lots()
      );
    end if;
  end if;
  -- Announce lots that entered their expiry window before refreshing, so that the count is
  -- reported here (the scan inside refresh_analytics_views then finds none left).
  announced := private.scan_expiring_lots();
  return jsonb_build_object(
    'as_of', now(),
    'refreshed', true,
    'views', private.refresh_analytics_views(true),
    'expiring_lots_announced', announced
  );
end
$$;

comment on function public.refresh_analytics(uuid) is
'Refresh the analytics materialized views now; returns as_of and per-view timings.

Allowed for service_role (any time) and for admins and owners of the active organization, who
are throttled to one refresh a minute across the database (refreshed = false and the current
as_of when a refresh ran less than a minute ago): the views hold every organization, so a
refresh costs the whole database. Either way it first runs private.scan_expiring_lots() and
reports in expiring_lots_announced how many lots it announced (lot_expiring notifications). Security definer because refreshing a materialized view
needs its owner; it only refreshes, after checking the caller''s role.';

revoke all on function public.refresh_analytics(uuid) from public, anon;

grant execute on function public.refresh_analytics(uuid) to authenticated, service_role;
