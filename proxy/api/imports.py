"""`POST /import/products`: a CSV file of products (text/csv body, or multipart field `file`).

`mode=dry-run` (the default) validates every row (pydantic, then the SQL function's checks
without writing) and reports the problems by row index and CSV line; `mode=commit` writes the
whole file through the same path as bulk-upsert (insert or replace by sku), all or nothing.
category and supplier are names, resolved within the organization.

Cells are trimmed. Text cells follow csvsafe: one leading `'` before a formula character is the
export's escape and is removed (an exported file imports back unchanged); a text cell that still
starts with `=`, `+`, `-`, `@`, tab or CR is a row error of type `formula` naming the column
(dry-run reports it, commit answers 422 and writes nothing). Number columns are not text: they
must parse as numbers, so a formula there is already an invalid number."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from proxy.api import batch, postgrest, tenancy
from proxy.api.bulk_models import ImportReport
from proxy.api.catalog_models import ProductIn
from proxy.api.csvsafe import unguard
from proxy.api.inputs import parse_query
from proxy.api.params import arg, quoted
from proxy.api.problems import ApiError, validation
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.api.settings import api_settings
from proxy.gate.gate import admit, decorate
from proxy.gate.identity import Identity

COLUMNS = (
    "sku,name,description,barcode,unit,price,unit_cost,low_stock_threshold,reorder_point,"
    "safety_stock,category,supplier"
).split(",")
TEXT = frozenset(("sku", "name", "description", "barcode", "unit", "category", "supplier"))
REQUIRED = ("sku", "name")
NAMED = {"category": "categories", "supplier": "suppliers"}  # column -> table of the names
CSV_TYPES = ("text/csv", "application/csv", "text/plain")


async def file_text(request: web.Request) -> str:
    """The uploaded file as text (the body, or the multipart field `file`), at most
    NIMBUS_MAX_BODY_BYTES (aiohttp answers 413 beyond it)."""
    if request.content_type == "multipart/form-data":
        try:
            form = await request.post()
        except (ValueError, HttpProcessingError) as exc:  # no boundary, bad part headers
            raise ApiError(400, "bad_request", "Malformed multipart body", str(exc)) from None
        part = form.get("file")
        if part is None:
            raise validation([{"field": "file", "message": "the multipart field file is required"}])
        raw = part if isinstance(part, str) else part.file.read()
    elif request.content_type in CSV_TYPES:
        raw = await request.read()
    else:
        raise ApiError(
            415, "unsupported_media_type", "Send text/csv, or multipart/form-data with a file"
        )
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise validation([{"field": "file", "message": "must be UTF-8 text"}]) from None


def records(text: str, limit: int) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line, fields) of every non-blank data row; 422 for a bad header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        rows = []
        for fields in reader:
            if any(value.strip() for value in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise validation([{"field": "file", "message": f"not CSV: {exc}"}]) from None
    errors = [
        {"field": "header", "message": f"unknown column {n!r}"} for n in header if n not in COLUMNS
    ]
    errors += [
        {"field": "header", "message": f"missing column {n!r}"} for n in REQUIRED if n not in header
    ]
    if len(set(header)) != len(header):
        errors.append({"field": "header", "message": "a column is named twice"})
    if not rows:
        errors.append({"field": "file", "message": "no data rows"})
    elif len(rows) > limit:
        errors.append({"field": "file", "message": f"at most {limit} rows (NIMBUS_BULK_MAX)"})
    if errors:
        raise validation(errors, "Invalid CSV file")
    return header, rows


async def names(
    request: web.Request, identity: Identity, org: str, table: str, wanted: set[str]
) -> dict[str, list[str]]:
    """name -> ids of the organization's rows of table with those names."""
    if not wanted:
        return {}
    reply = await postgrest.call(
        request,
        identity,
        "GET",
        table,
        params=[
            ("select", "id,name"),
            ("organization_id", f"eq.{org}"),
            ("name", "in.(" + ",".join(quoted(n) for n in sorted(wanted)) + ")"),
        ],
    )
    found: dict[str, list[str]] = {}
    for row in reply.json() or []:
        found.setdefault(row["name"], []).append(row["id"])
    return found


def cells(header: list[str], fields: list[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A row's non-empty cells (trimmed; in text columns, the export's `'` removed) and an error
    for every text cell that would be a spreadsheet formula (that cell is left out)."""
    row: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for column, raw in zip(header, fields, strict=False):
        value = raw.strip()
        if not value:
            continue
        if column in TEXT:
            value, allowed = unguard(value)
            if not allowed:
                errors.append(
                    {
                        "field": column,
                        "message": "starts with =, +, -, @, tab or CR (a spreadsheet formula);"
                        " put one ' before it to keep it as text",
                        "type": "formula",
                    }
                )
                continue
        row[column] = value
    return row, errors


def _resolve(column: str, value: str, known: dict[str, list[str]], errors: list) -> str | None:
    ids = known.get(value, [])
    if len(ids) == 1:
        return ids[0]
    what = "no" if not ids else "several"
    errors.append({"field": column, "message": f"{what} {column} named {value!r}", "type": "name"})
    return None


async def import_products(request: web.Request, route: Route) -> web.StreamResponse:
    """Check (dry-run) or write (commit) the products of a CSV file."""
    identity = await admit(request)
    parse_query(route, request.query)
    mode = request.query.get("mode", "dry-run")
    header, rows = records(await file_text(request), api_settings().bulk_max)
    org = await tenancy.resolve(request, identity)
    parsed = [cells(header, fields) for _line, fields in rows]
    values = [row for row, _formulas in parsed]
    known = {
        column: await names(
            request, identity, org, table, {v[column] for v in values if column in v}
        )
        for column, table in NAMED.items()
    }
    rows_batch = batch.Batch(total=len(rows))
    for index, ((line, fields), (row, formulas)) in enumerate(zip(rows, parsed, strict=True)):
        rows_batch.lines[index] = line
        errors: list[dict[str, Any]] = list(formulas)
        if len(fields) != len(header):
            errors.append(
                {"field": "row", "message": f"{len(fields)} fields, header has {len(header)}"}
            )
        for column in NAMED:
            if column in row:
                row[column + "_id"] = _resolve(column, row.pop(column), known[column], errors)
        rows_batch.add(index, row, ProductIn, partial=False, errors=errors)
    if mode == "commit":
        result = await batch.commit(request, identity, route, rows_batch, "upsert")
        problems: list = []
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
    return decorate(request, envelope(report.model_dump(mode="json")))


# The schema of the file as far as a regular expression goes (a header naming sku and name, then
# rows); the columns, types and limits of each row are ProductIn's, listed in docs/API.md.
FILE = {
    "type": "string",
    "description": "CSV, UTF-8; header row with sku and name, any of: " + ", ".join(COLUMNS),
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
        "Import products from CSV: dry-run reports per-row problems, commit writes all or none",
        "Import",
        query=(
            arg(
                "mode",
                "mode",
                enum=("dry-run", "commit"),
                description="dry-run (default): check only; commit: upsert by sku",
            ),
        ),
        org="arg",
        roles="manager and above",
        handler=import_products,
        responses=(409, 413, 415),
        extra={"response": ImportReport, "request_body": UPLOAD},
    ),
]
