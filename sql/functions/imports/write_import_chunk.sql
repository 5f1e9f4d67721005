create or replace function public.write_import_chunk(
  job_id uuid,
  lease uuid,
  seq integer,
  rows jsonb
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  job private.import_jobs;
  outcome jsonb;
  n integer;
begin
  select j.* into job
  from private.import_jobs as j
  where j.id = write_import_chunk.job_id
  for update;
  if not found or job.lease is distinct from write_import_chunk.lease then
    raise sqlstate 'PT409' using
      message = 'this import job is not yours to write (finished, or taken over)',
      detail = write_import_chunk.job_id::text,
      hint = 'lease_lost';
  end if;
  n := jsonb_array_length(write_import_chunk.rows);
  if write_import_chunk.seq * job.chunk_size < job.written then
    return to_jsonb(job) - 'lease';  -- written before (a retry): nothing to do
  end if;
  if job.status <> 'writing' or write_import_chunk.seq * job.chunk_size <> job.written
    or job.written + n > job.total then
    raise sqlstate 'PT409' using
      message = format(
        'chunk %s does not follow the %s rows written', write_import_chunk.seq, job.written
      ),
      detail = write_import_chunk.job_id::text,
      hint = 'conflict';
  end if;
  outcome := public.bulk_upsert_products(
    write_import_chunk.rows, 'upsert', job.organization_id, false
  );
  update private.import_jobs as j set
    written = j.written + n,
    created = j.created + (outcome ->> 'created')::integer,
    updated = j.updated + (outcome ->> 'updated')::integer,
    status = case when j.written + n = j.total then 'done' else 'writing' end,
    lease = case when j.written + n = j.total then null else j.lease end,
    lease_until = case
      when j.written + n = j.total then null else now() + interval '60 seconds'
    end,
    updated_at = now(),
    finished_at = case when j.written + n = j.total then now() end
  where j.id = job.id
  returning j.* into job;
  return to_jsonb(job) - 'lease';
end
$$;

comment on function public.write_import_chunk(uuid, uuid, integer, jsonb) is
'Writes chunk seq (from 0) of an import job through public.bulk_upsert_products (upsert: by id
when a row has one, else by sku) and advances the job in the same transaction, so progress and
rows never disagree.

A chunk already written is a no-op (a retried call); a chunk out of order is PT409 conflict;
only the holder of the lease may write (else PT409 lease_lost). The last chunk sets status
done. A bad row raises bulk_upsert_products'' error and nothing of this chunk is written.
Security invoker: RLS on products and private.import_jobs applies.';

revoke all on function public.write_import_chunk(uuid, uuid, integer, jsonb)
from public, anon;

grant execute on function public.write_import_chunk(uuid, uuid, integer, jsonb)
to authenticated, service_role;
