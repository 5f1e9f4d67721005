-- CSV imports larger than the synchronous cap run as jobs (issue 16, point 5). Their state lives
-- here, in PostgreSQL under RLS, so that any proxy process can answer GET /imports/{id}, a
-- retried upload finds its job, and a chunk's rows and the job's progress commit together.
-- private: PostgREST does not serve it; the public functions of sql/functions/imports do.

create table private.import_jobs (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  created_by uuid not null default auth.uid(),
  kind text not null default 'products' check (kind in ('products')),
  mode text not null check (mode in ('dry-run', 'commit')),  -- noqa: RF04
  idempotency_key text not null check (char_length(idempotency_key) between 1 and 200),
  file_sha256 text not null check (file_sha256 ~ '^[0-9a-f]{64}$'),
  status text not null default 'validating'
  check (status in ('validating', 'writing', 'done', 'failed')),
  total integer not null check (total >= 0),
  chunk_size integer not null check (chunk_size > 0),
  validated integer not null default 0 check (validated between 0 and total),
  written integer not null default 0 check (written between 0 and total),
  created integer not null default 0 check (created >= 0),
  updated integer not null default 0 check (updated >= 0),
  error_count integer not null default 0 check (error_count >= 0),
  errors jsonb not null default '[]' check (jsonb_typeof(errors) = 'array'),
  message text,
  lease uuid,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);

comment on table private.import_jobs is
'One CSV import run as a job: who started it, its idempotency key and file hash, and its
progress (rows validated, rows written, created/updated, errors per row, at most 1000 kept).

status: validating (every row checked, nothing written), then writing (chunks of chunk_size
rows, each committed with its progress by public.write_import_chunk), then done; failed when a
row is invalid (nothing written) or a chunk failed (message says why; the rows of earlier
chunks stay written). lease/lease_until: the proxy process working on it; a job whose lease
ran out is taken over by the next upload of the same file. Read through public.import_job.';

create index import_jobs_organization_id_idx on private.import_jobs (organization_id);

create index import_jobs_key_idx
on private.import_jobs (organization_id, idempotency_key, created_at desc);

revoke all on table private.import_jobs from public, anon, authenticated, service_role;

grant select, insert, update on table private.import_jobs to authenticated, service_role;
