create or replace function public.import_job(id uuid)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  job jsonb;
begin
  -- What clients see of a job (the ImportJob of /api/v1): not its lease, its expiry, the
  -- file's digest, who created it, its idempotency key, its kind.
  select to_jsonb(j) - 'lease' - 'lease_until' - 'file_sha256' - 'created_by'
    - 'idempotency_key' - 'kind'
    || jsonb_build_object('stalled', j.status in ('validating', 'writing')
      and j.lease_until < now())
  into job
  from private.import_jobs as j
  where j.id = import_job.id;
  if job is null then
    raise sqlstate 'PT404' using
      message = 'no such import job',
      detail = import_job.id::text,
      hint = 'not_found';
  end if;
  return job;
end
$$;

comment on function public.import_job(uuid) is
'An import job of the caller''s organizations: status, rows validated and written, created,
updated, the row errors (at most 1000; error_count counts all) and whether it stalled (its
worker stopped: upload the same file again to resume). PT404 not_found when there is none the
caller may see. Security invoker: RLS on private.import_jobs applies.';

revoke all on function public.import_job(uuid) from public, anon;

grant execute on function public.import_job(uuid) to authenticated, service_role;
