"""`POST /import/products`: a CSV file of products (text/csv body, or multipart field `file`).

`mode=dry-run` (the default) validates every row (pydantic, then the SQL function's checks
without writing) and reports the problems by row index and CSV line; `mode=commit` writes the
whole file through the same path as bulk-upsert (a row with an id replaces that product, sku
included; one without, by sku), all or nothing. The columns read and ignored, and the cells'
formula rule, are importfile's: the file an export writes imports back as it is.

A file of more than NIMBUS_BULK_MAX rows (or any file sent with `Prefer: respond-async`) is an
import job (importjobs): 202 with the job, whose progress `GET /imports/{id}` reports."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from proxy.api import batch, importjobs, importrows, importstatus, tenancy
from proxy.api.bulk_models import ImportReport
from proxy.api.importfile import READ, decoded, file_bytes, records
from proxy.api.importstatus import ImportJob
from proxy.api.inputs import parse_query
from proxy.api.params import arg
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.api.settings import api_settings
from proxy.gate.gate import identity_of


def wants_job(request: web.Request) -> bool:
    """The client asked for an asynchronous answer (RFC 7240 `Prefer: respond-async`)."""
    prefer = ",".join(request.headers.getall("Prefer", []))
    return "respond-async" in (p.strip().lower() for p in prefer.split(","))


async def import_products(request: web.Request, route: Route) -> web.StreamResponse:
    """Check (dry-run) or write (commit) the products of a CSV file; a large one as a job."""
    identity = identity_of(request)
    parse_query(route, request.query)
    mode = request.query.get("mode", "dry-run")
    settings = api_settings()
    raw = await file_bytes(request, settings.import_max_bytes)
    header, rows = await asyncio.to_thread(records, decoded(raw))  # seconds for 100k rows
    org = await tenancy.resolve(request, identity)
    file = await importrows.parse(request, identity, org, header, rows)
    if file.total > settings.bulk_max or wants_job(request):
        response = await importjobs.start(request, identity, org, mode, raw, file)
        return response
    rows_batch = importrows.batch(file, 0, file.total)
    if mode == "commit":
        result = await batch.commit(request, identity, route, rows_batch, "upsert")
        problems: list[dict[str, Any]] = []
    else:
        problems, result = await batch.check(request, identity, route, rows_batch, "upsert")
    report = ImportReport(
        mode=mode,
        total=rows_batch.total,
        valid=rows_batch.total - len(problems),
        created=result["created"],
        updated=result["updated"],
        errors=problems,
        rows=result["rows"],
    )
    return envelope(report.model_dump(mode="json"))


# The schema of the file as far as a regular expression goes (a header naming sku and name, then
# rows); the columns, types and limits of each row are ProductIn's, listed in docs/API.md.
FILE = {
    "type": "string",
    "description": "CSV, UTF-8; header row with sku and name, any of: "
    + ", ".join(READ)
    + " (created_at, updated_at, on_hand and on_hand:<location> are ignored)",
    "pattern": r"^sku,name\r?\n([A-Za-z0-9-]{1,64},[A-Za-z0-9]([A-Za-z0-9 ]{0,198}[A-Za-z0-9])?"
    r"\r?\n)+$",
}
UPLOAD = {
    "required": True,
    "content": {
        "text/csv": {"schema": FILE},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": FILE},
                "additionalProperties": False,
            }
        },
    },
}

ROUTES: list[Route] = [
    Route(
        "POST",
        "/import/products",
        "call",
        batch.FUNCTION,
        "Import products from CSV: dry-run reports per-row problems, commit writes all or none;"
        " a file over NIMBUS_BULK_MAX rows becomes a job (202)",
        "Import",
        query=(
            arg(
                "mode",
                "mode",
                enum=("dry-run", "commit"),
                description="dry-run (default): check only; commit: upsert by id, else by sku",
            ),
        ),
        org="arg",
        roles="manager and above",
        handler=import_products,
        responses=(409, 413, 415),
        extra={"response": ImportReport, "request_body": UPLOAD, "accepted": ImportJob},
    ),
    importstatus.ROUTE,
]
