create or replace function public.start_import(
  idempotency_key text,
  file_sha256 text,
  mode text,
  total integer,
  chunk_size integer,
  organization_id uuid default null
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  org uuid;
  job private.import_jobs;
  claimed boolean := true;
begin
  org := private.active_organization(start_import.organization_id);
  if not private.has_role(org, 'manager') then
    raise sqlstate 'PT403' using
      message = 'your role may not import products',
      detail = org::text,
      hint = 'forbidden';
  end if;
  if start_import.mode is null or start_import.mode not in ('dry-run', 'commit')
    or start_import.total is null or start_import.total < 1
    or start_import.chunk_size is null or start_import.chunk_size not between 1 and 10000
    or start_import.file_sha256 is null or start_import.file_sha256 !~ '^[0-9a-f]{64}$'
    or coalesce(char_length(start_import.idempotency_key), 0) not between 1 and 200 then
    raise sqlstate 'PT422' using
      message = 'invalid import job arguments',
      hint = 'validation_failed';
  end if;
  -- One start per (organization, key) at a time, across every proxy process.
  perform pg_advisory_xact_lock(
    hashtextextended(org::text || ':' || start_import.idempotency_key, 16)
  );
  select j.* into job
  from private.import_jobs as j
  where
    j.organization_id = org
    and j.idempotency_key = start_import.idempotency_key
    and j.created_at > now() - interval '1 day'
  order by j.created_at desc
  limit 1
  for update;

  if found then
    if job.file_sha256 <> start_import.file_sha256 or job.mode <> start_import.mode then
      raise sqlstate 'PT409' using
        message = 'this Idempotency-Key was used for another file or mode',
        detail = job.id::text,
        hint = 'idempotency_conflict';
    end if;
    if job.status = 'done' or (job.status <> 'failed' and job.lease_until > now()) then
      claimed := false;  -- finished, or being worked on: the retry gets the same job
    else
      -- failed or stalled: this upload takes it over, from its last written chunk.
      update private.import_jobs as j set
        status = case when j.written > 0 then 'writing' else 'validating' end,
        validated = case when j.written > 0 then j.validated else 0 end,
        errors = case when j.written > 0 then j.errors else '[]' end,
        error_count = case when j.written > 0 then j.error_count else 0 end,
        message = null,
        lease = gen_random_uuid(),
        lease_until = now() + interval '60 seconds',
        updated_at = now(),
        finished_at = null
      where j.id = job.id
      returning j.* into job;
    end if;
  else
    insert into private.import_jobs (
      organization_id, mode, idempotency_key, file_sha256, total, chunk_size, lease,
      lease_until
    )
    values (
      org, start_import.mode, start_import.idempotency_key, start_import.file_sha256,
      start_import.total, start_import.chunk_size, gen_random_uuid(),
      now() + interval '60 seconds'
    )
    returning * into job;
  end if;
  return (to_jsonb(job) - 'lease')
    || jsonb_build_object('claimed', claimed, 'lease', case when claimed then job.lease end);
end
$$;

comment on function public.start_import(text, text, text, integer, integer, uuid) is
'Starts a CSV import job, or finds the one this upload is a retry of.

The job of the organization with the same idempotency_key created in the last 24 hours is
returned when done or still being worked on (claimed false: the caller must not work on it);
when failed or stalled (its lease ran out) the caller takes it over (claimed true, a new lease;
writing resumes after the last written chunk). The same key with another file_sha256 or mode
is PT409 idempotency_conflict. Otherwise a new job (status validating) with the caller''s
lease. Needs manager (PT403 forbidden). Security invoker: RLS on private.import_jobs applies.';

revoke all on function public.start_import(text, text, text, integer, integer, uuid)
from public, anon;

grant execute on function public.start_import(text, text, text, integer, integer, uuid)
to authenticated, service_role;
