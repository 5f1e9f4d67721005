"""The product CSV file an import reads: its columns (each one read or ignored, so the file an
export writes imports back as it is), the upload (streamed, up to NIMBUS_IMPORT_MAX_BYTES), and
its rows as cells.

Columns read: id (the product this row replaces; empty: by sku), sku, name, description,
barcode, unit, price, unit_cost, low_stock_threshold, reorder_point, safety_stock, active,
category_id / category (an id, or a name resolved in the organization; both given: they must
name the same one), supplier_id / supplier (likewise). Columns ignored: created_at, updated_at,
on_hand and every on_hand:<location code> (stock changes only through the ledger: adjustments,
counts, orders). Any other column is a 422 naming it.

Cells are trimmed. Text cells follow csvsafe: one leading `'` before a formula character is the
export's escape and is removed; a text cell that still starts with `=`, `+`, `-`, `@`, tab or CR
is a row error of type `formula` naming the column. Number, boolean and id columns are not text:
they must parse as what they are, so a formula there is already invalid."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from proxy.api.csvsafe import unguard
from proxy.api.problems import ApiError, validation

READ = (
    "id,sku,name,description,barcode,unit,price,unit_cost,low_stock_threshold,reorder_point,"
    "safety_stock,active,category_id,category,supplier_id,supplier"
).split(",")
IGNORED = ("created_at", "updated_at", "on_hand")
STOCK_PREFIX = "on_hand:"  # on_hand:<location code>, written by the export, never read
TEXT = frozenset(("sku", "name", "description", "barcode", "unit", "category", "supplier"))
REQUIRED = ("sku", "name")
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
READ_CHUNK = 65_536


def ignored(column: str) -> bool:
    """A column the export writes and the import skips."""
    return column in IGNORED or column.startswith(STOCK_PREFIX)


async def _capped(read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
    """Everything read() gives, 413 beyond limit bytes."""
    parts: list[bytes] = []
    size = 0
    while chunk := await read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"The file is larger than {limit} bytes (NIMBUS_IMPORT_MAX_BYTES)",
            )
        parts.append(chunk)
    return b"".join(parts)


async def file_bytes(request: web.Request, limit: int) -> bytes:
    """The uploaded file (the body, or the multipart field `file`), streamed, at most limit
    bytes: an import may be larger than NIMBUS_MAX_BODY_BYTES, which caps other bodies."""
    if request.content_type == "multipart/form-data":
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    return await _capped(part.read_chunk, limit)
                await part.release()
        except (ValueError, AssertionError, HttpProcessingError) as exc:
            raise ApiError(400, "bad_request", "Malformed multipart body", str(exc)) from None
        raise validation([{"field": "file", "message": "the multipart field file is required"}])
    if request.content_type in CSV_TYPES:
        return await _capped(request.content.read, limit)
    raise ApiError(
        415, "unsupported_media_type", "Send text/csv, or multipart/form-data with a file"
    )


def decoded(raw: bytes) -> str:
    """The file as text (UTF-8, an optional BOM); 422 when it is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise validation([{"field": "file", "message": "must be UTF-8 text"}]) from None


def records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line, fields) of every non-blank data row; 422 for a bad header, and
    for a file that is not strict CSV: a quote never closed used to run on to the end of the
    file, the rows after it swallowed into one field, imported without a word."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1  # the line the record being read begins on
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        rows = []
        start = reader.line_num + 1
        for fields in reader:
            if any(value.strip() for value in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        message = f"not CSV from line {start}: {exc}"
        raise validation([{"field": "file", "message": message}]) from None
    errors = [
        {"field": "header", "message": f"unknown column {n!r}"}
        for n in header
        if n not in READ and not ignored(n)
    ]
    errors += [
        {"field": "header", "message": f"missing column {n!r}"} for n in REQUIRED if n not in header
    ]
    if len(set(header)) != len(header):
        errors.append({"field": "header", "message": "a column is named twice"})
    if not rows:
        errors.append({"field": "file", "message": "no data rows"})
    if errors:
        raise validation(errors, "Invalid CSV file")
    return header, rows


FORMULA_ERROR = {
    "message": "starts with =, +, -, @, tab or CR (a spreadsheet formula);"
    " put one ' before it to keep it as text",
    "type": "formula",
}


def cells(header: list[str], fields: list[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A row's non-empty cells of the columns read (trimmed; in text columns, the export's `'`
    removed) and an error for every text cell that would be a spreadsheet formula (that cell
    is left out)."""
    row: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for column, raw in zip(header, fields, strict=False):
        value = raw.strip()
        if not value or ignored(column):
            continue
        if column in TEXT:
            value, allowed = unguard(value)
            if not allowed:
                errors.append({"field": column, **FORMULA_ERROR})
                continue
        row[column] = value
    return row, errors
