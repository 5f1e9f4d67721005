"""What clients see of an import job: the ImportJob model and `GET /imports/{id}`, its progress
as PostgreSQL has it (`public.import_job`, under RLS), from any proxy process, never cached."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, Field

from proxy.api import postgrest
from proxy.api.inputs import parse_query
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.gate.gate import identity_of


class ImportJob(BaseModel):
    """A CSV import job and its progress (rows validated, then written, of total)."""

    id: UUID
    organization_id: UUID
    mode: Literal["dry-run", "commit"]
    status: Literal["validating", "writing", "done", "failed"]
    total: int = Field(ge=0, description="data rows in the file")
    chunk_size: int = Field(ge=1)
    validated: int = Field(ge=0)
    written: int = Field(ge=0)
    created: int = Field(ge=0)
    updated: int = Field(ge=0)
    error_count: int = Field(ge=0, description="rows with errors (errors lists 1000 at most)")
    errors: list[dict[str, Any]]
    message: str | None = None
    stalled: bool = Field(False, description="its worker stopped: upload the file again")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


def public(job: dict[str, Any]) -> dict[str, Any]:
    """The job as clients see it: ImportJob's fields, nothing else of the row (the lease, the
    file's digest, who created it, its idempotency key stay inside)."""
    return {k: job[k] for k in ImportJob.model_fields if k in job}


async def job_status(request: web.Request, route: Route) -> web.StreamResponse:
    """An import job's progress, never cached (it moves with every chunk)."""
    identity = identity_of(request)
    parse_query(route, request.query)
    params = [("id", request.match_info["id"])]
    reply = await postgrest.call(request, identity, "GET", route.target, params=params)
    job = reply.json()
    response = envelope(public(job) if isinstance(job, dict) else job)
    response.headers["Cache-Control"] = "no-store"
    return response


ROUTE = Route(
    "GET",
    "/imports/{id}",
    "custom",
    "rpc/import_job",
    "Progress of an import job: rows validated and written of total, errors per row",
    "Import",
    handler=job_status,
    extra={"response": ImportJob},
)
