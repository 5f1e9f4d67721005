create or replace function private.analytics_section(views text[], keys text[])
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select case
    when coalesce(cardinality(analytics_section.views), 0) = 0 then jsonb_build_object(
      'freshness', 'live',
      'as_of', now(),
      'keys', to_jsonb(analytics_section.keys)
    )
    else jsonb_build_object(
      'freshness', 'as_of',
      'as_of', (
        select min(r.refreshed_at)
        from private.analytics_refreshes as r
        where r.view = any(analytics_section.views)
      ),
      'views', to_jsonb(analytics_section.views),
      'keys', to_jsonb(analytics_section.keys)
    )
  end
$$;

comment on function private.analytics_section(text[], text[]) is
'How fresh one section of an analytics answer is: live, or as of the last refresh of the views
it reads.

views empty or null: {freshness: live, as_of: now(), keys} (computed from the tables in this
transaction). Otherwise {freshness: as_of, as_of: the oldest refreshed_at of those views in
private.analytics_refreshes (null if never recorded), views, keys}. keys names the fields of the
answer the section covers. Security invoker: called by the analytics functions, as their owner.';

revoke all on function private.analytics_section(text[], text[]) from public, anon, authenticated;
