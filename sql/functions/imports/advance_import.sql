create or replace function public.advance_import(
  job_id uuid,
  lease uuid,
  validated integer,
  errors jsonb default '[]',
  status text default null,
  message text default null,
  created integer default 0,
  updated integer default 0
)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  job private.import_jobs;
begin
  if jsonb_typeof(advance_import.errors) is distinct from 'array'
    or advance_import.status not in ('validating', 'writing', 'done', 'failed') then
    raise sqlstate 'PT422' using
      message = 'errors must be an array; status validating, writing, done or failed',
      hint = 'validation_failed';
  end if;
  update private.import_jobs as j set
    validated = least(greatest(advance_import.validated, j.validated), j.total),
    errors = case
      when jsonb_array_length(j.errors) >= 1000 then j.errors
      else j.errors || (
        select coalesce(jsonb_agg(e.v), '[]')
        from (
          select e.v
          from jsonb_array_elements(advance_import.errors) with ordinality as e (v, ord)
          order by e.ord
          limit 1000 - jsonb_array_length(j.errors)
        ) as e
      )
    end,
    error_count = j.error_count + jsonb_array_length(advance_import.errors),
    created = j.created + greatest(coalesce(advance_import.created, 0), 0),
    updated = j.updated + greatest(coalesce(advance_import.updated, 0), 0),
    status = coalesce(advance_import.status, j.status),
    message = coalesce(advance_import.message, j.message),
    lease = case when advance_import.status in ('done', 'failed') then null else j.lease end,
    lease_until = case
      when advance_import.status in ('done', 'failed') then null
      else now() + interval '60 seconds'
    end,
    updated_at = now(),
    finished_at = case when advance_import.status in ('done', 'failed') then now() end
  where
    j.id = advance_import.job_id
    and j.lease = advance_import.lease
    and j.status in ('validating', 'writing')
  returning j.* into job;
  if not found then
    raise sqlstate 'PT409' using
      message = 'this import job is not yours to advance (finished, or taken over)',
      detail = advance_import.job_id::text,
      hint = 'lease_lost';
  end if;
  return to_jsonb(job) - 'lease';
end
$$;

comment on function public.advance_import(
  uuid, uuid, integer, jsonb, text, text, integer, integer
) is
'Records an import job''s validation progress: rows validated so far, the row errors found
since the last call (appended; at most 1000 kept, error_count counts all), and optionally its
next status (writing, done, failed), a message, and rows a dry run would create and update
(added to created and updated); renews the lease for 60 seconds.

Only the holder of the job''s lease may advance it (else PT409 lease_lost). Security invoker:
RLS on private.import_jobs applies (managers of the organization).';

revoke all on function public.advance_import(
  uuid, uuid, integer, jsonb, text, text, integer, integer
)
from public, anon;

grant execute on function public.advance_import(
  uuid, uuid, integer, jsonb, text, text, integer, integer
)
to authenticated, service_role;
