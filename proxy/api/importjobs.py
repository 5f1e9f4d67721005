"""Import jobs: a CSV file larger than NIMBUS_BULK_MAX rows is checked and written a chunk at a
time in the background, with its progress in PostgreSQL (`private.import_jobs`, under RLS).

Why PostgreSQL and not Redis: a chunk's rows and the job's progress commit in one transaction
(`public.write_import_chunk`), so progress can never claim rows that were not written, nor miss
rows that were; the job is the organization's data, so RLS decides who sees it, as for the rows
it writes; and it works with no Redis at all. Any proxy process answers `GET /imports/{id}`
(proxy/api/importstatus.py).

The process that received the upload works on the job, holding its lease (renewed by every
step, 60 s). Phases: validating (every chunk dry-run: nothing is written unless every row is
valid), then writing (chunk after chunk, each committed with its progress; a chunk already
written is skipped). Retried uploads are idempotent: the same file (or `Idempotency-Key`) within
24 h gets the same job back, running or done; one whose worker stopped (the process ended, the
token expired, PostgREST failed) is taken over and resumes after its last written chunk. The
job acts with the uploader's token: a job must finish before it expires."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from aiohttp import web

from proxy.api import batch, postgrest
from proxy.api.importrows import ParsedFile
from proxy.api.importrows import batch as rows_of
from proxy.api.importstatus import public
from proxy.api.problems import ApiError, validation
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.api.settings import api_settings
from proxy.api.writes import REPLAYED, write
from proxy.cache.dependencies import SIDE_EFFECTS
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError

log = logging.getLogger(__name__)
TASKS = web.AppKey[set[asyncio.Task[None]]]("import_jobs")
CHUNK = Route(  # not mounted: the write each chunk makes, for the cache's invalidation
    "POST",
    "/import/products",
    "call",
    "rpc/write_import_chunk",
    "Write one chunk of an import job",
    "Import",
    org="arg",
    writes=frozenset({"products"}) | SIDE_EFFECTS,
)


def job_key(request: web.Request, mode: str, raw: bytes) -> str:
    """The Idempotency-Key sent, else the file and mode's hash: a retried upload's key."""
    sent = request.headers.get("Idempotency-Key")
    if sent is None:
        return hashlib.sha256(mode.encode() + b"\n" + raw).hexdigest()
    if not 1 <= len(sent.strip()) <= 200:
        raise validation([{"field": "Idempotency-Key", "message": "1 to 200 characters"}])
    return sent.strip()


async def start(
    request: web.Request, identity: Identity, org: str, mode: str, raw: bytes, file: ParsedFile
) -> web.Response:
    """202 with the job for this upload: a new one, or the one it is a retry of."""
    args = {
        "idempotency_key": job_key(request, mode, raw),
        "file_sha256": hashlib.sha256(raw).hexdigest(),
        "mode": mode,
        "total": file.total,
        "chunk_size": api_settings().bulk_max,
        "organization_id": org,
    }
    job = (await postgrest.call(request, identity, "POST", "rpc/start_import", json=args)).json()
    if job["claimed"]:
        task = asyncio.create_task(run(request, identity, org, file, job))
        tasks = request.app[TASKS]
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    response = envelope(public(job), status=202)
    response.headers["Location"] = f"/api/v1/imports/{job['id']}"
    if not job["claimed"]:
        response.headers[REPLAYED] = "true"
    return response


async def advance(
    request: web.Request, identity: Identity, job: dict[str, Any], **fields: Any
) -> None:
    """Record progress (rows validated, new errors, next status) under the job's lease."""
    args = {"job_id": job["id"], "lease": job["lease"], **fields}
    await postgrest.call(request, identity, "POST", "rpc/advance_import", json=args)


def _row_problems(rows: batch.Batch, exc: ApiError) -> list[dict[str, Any]] | None:
    """SQL's per-row problems of a chunk (indexes into the rows sent) as the file's rows."""
    details = exc.details
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("index"), int) for d in details
    ):
        return None
    return [
        rows.problem(rows.positions[d["index"]], d.get("errors", []))
        for d in details
        if 0 <= d["index"] < len(rows.positions)
    ]


async def validate(
    request: web.Request, identity: Identity, file: ParsedFile, job: dict[str, Any]
) -> bool:
    """Dry-run every chunk, recording progress and errors; True when every row is valid."""
    size, invalid = job["chunk_size"], 0
    would = {"created": 0, "updated": 0}  # a dry run's answer, as the synchronous one gives
    for begin in range(0, file.total, size):
        rows = rows_of(file, begin, begin + size)
        problems, outcome = await batch.check(request, identity, CHUNK, rows, "upsert")
        invalid += len(problems)
        for key in would:
            would[key] += outcome[key]
        end = min(begin + size, file.total)
        await advance(request, identity, job, validated=end, errors=problems)
    if invalid and job["mode"] == "commit":
        message = f"{invalid} of {file.total} rows are invalid; none written"
        await advance(
            request, identity, job, validated=file.total, status="failed", message=message
        )
    else:
        if job["mode"] == "commit":
            await advance(request, identity, job, validated=file.total, status="writing")
        else:
            await advance(request, identity, job, validated=file.total, status="done", **would)
    return not invalid


async def write_chunks(
    request: web.Request, identity: Identity, org: str, file: ParsedFile, job: dict[str, Any]
) -> None:
    """Write the chunks not yet written, each with its progress in one transaction."""
    size = job["chunk_size"]
    for seq in range(job["written"] // size, (file.total + size - 1) // size):
        rows = rows_of(file, seq * size, (seq + 1) * size)
        args = {"job_id": job["id"], "lease": job["lease"], "seq": seq, "rows": rows.rows}
        try:
            if rows.errors:  # cannot happen after validation; never write a partial chunk
                raise ApiError(422, "validation_failed", "invalid rows", [])
            await write(request, identity, CHUNK, "POST", json=args, named=org)
        except ApiError as exc:
            problems = [rows.problem(i, e) for i, e in sorted(rows.errors.items())]
            problems = problems or _row_problems(rows, exc) or []
            done = seq * size
            message = f"chunk {seq} (rows {done}-{done + len(rows.lines) - 1}): {exc.message};"
            message += f" the {done} rows before it are written; fix and upload again"
            await advance(
                request,
                identity,
                job,
                validated=file.total,
                errors=problems,
                status="failed",
                message=message,
            )
            return


async def run(
    request: web.Request, identity: Identity, org: str, file: ParsedFile, job: dict[str, Any]
) -> None:
    """Work on a claimed job to its end; on an error, mark it failed (a retry resumes it)."""
    try:
        if job["status"] == "validating":
            valid = await validate(request, identity, file, job)
            if not valid or job["mode"] == "dry-run":
                return
        await write_chunks(request, identity, org, file, job)
    except asyncio.CancelledError:
        log.info("import job %s stopped with the process; a retried upload resumes it", job["id"])
        raise
    except ProxyError as exc:
        log.warning("import job %s failed: %s %s", job["id"], exc.status, exc)
        await _give_up(request, identity, job, str(exc))
    except Exception:  # a bug: logged once here, where a background task's error would vanish
        log.exception("import job %s failed unexpectedly", job["id"])
        await _give_up(request, identity, job, "internal error; upload the file again")


async def _give_up(
    request: web.Request, identity: Identity, job: dict[str, Any], message: str
) -> None:
    """Mark the job failed (a retried upload takes it over); if even that fails, it stalls."""
    try:
        await advance(request, identity, job, validated=0, status="failed", message=message)
    except ProxyError:
        log.warning("import job %s: could not record its failure; it stalls", job["id"])


async def _stop_jobs(app: web.Application) -> None:
    """on_shutdown: stop this process's jobs (their leases run out; a retry resumes them)."""
    running: set[asyncio.Task[None]] = app[TASKS]
    for task in list(running):
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def setup(app: web.Application) -> None:
    """The registry of this process's running import jobs."""
    app[TASKS] = set()
    app.on_shutdown.append(_stop_jobs)
