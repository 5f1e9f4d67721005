-- RLS on private.import_jobs: members read their organization's import jobs; managers start
-- and advance them (through the functions of sql/functions/imports; PostgREST does not serve
-- the private schema). Re-applied by every `nimbus migrate`: drop, then create.

alter table private.import_jobs enable row level security;

drop policy if exists "members can read import jobs of their organizations"
on private.import_jobs;

create policy "members can read import jobs of their organizations"
on private.import_jobs
for select
to authenticated
using (organization_id = any(array(select private.member_organizations())));

drop policy if exists "managers can start import jobs in their organization"
on private.import_jobs;

create policy "managers can start import jobs in their organization"
on private.import_jobs
for insert
to authenticated
with check (
  organization_id = any(array(select private.role_organizations('manager')))
  and created_by = (select auth.uid())
);

drop policy if exists "managers can advance import jobs of their organizations"
on private.import_jobs;

create policy "managers can advance import jobs of their organizations"
on private.import_jobs
for update
to authenticated
using (organization_id = any(array(select private.role_organizations('manager'))))
with check (organization_id = any(array(select private.role_organizations('manager'))));
