-- The part of Supabase's `auth` schema that NIMBUS relies on, for plain PostgreSQL.
-- Hosted Supabase has the real thing; `nimbus migrate` skips this directory there.
create schema if not exists auth;

comment on schema auth is 'Local stand-in for Supabase Auth: users and the JWT claim accessors.';

grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table auth.users is
'Minimal local copy of Supabase''s auth.users: the ids tokens refer to.';

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claims', true), ''),
    '{}'
  )::jsonb
$$;

comment on function auth.jwt() is
'The verified JWT claims of the current request (PostgREST sets them).';

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(
    coalesce(
      current_setting('request.jwt.claim.sub', true),
      auth.jwt() ->> 'sub'
    ),
    ''
  )::uuid
$$;

comment on function auth.uid() is 'The calling user''s id (JWT sub), or null for anon.';

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    auth.jwt() ->> 'role'
  )
$$;

comment on function auth.role() is
'The calling role from the JWT (anon, authenticated, service_role).';

grant execute on function auth.jwt(), auth.uid(), auth.role()
to anon, authenticated, service_role;
