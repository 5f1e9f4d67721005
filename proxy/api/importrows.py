"""The rows of a product CSV as a Batch for `public.bulk_upsert_products` (upsert: by id when a
row has one, else by sku): cells checked, category/supplier names resolved in the organization
and reconciled with the ids beside them, repeats within the whole file named by file row.

Built a slice at a time (indexes stay the file's), so an import job validates and writes a
large file chunk by chunk with every error still naming the file's row and line."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiohttp import web

from proxy.api import postgrest
from proxy.api.batch import Batch
from proxy.api.catalog_models import ProductIn
from proxy.api.importfile import cells
from proxy.api.params import quoted
from proxy.gate.identity import Identity

NAMED = {"category": "categories", "supplier": "suppliers"}  # column -> table of the names
UNIQUE = ("id", "sku", "barcode")  # no two rows of a file may share one


class ProductRow(ProductIn):
    """One product row of a CSV import: ProductIn, plus the id of the product it replaces."""

    id: UUID | None = None


@dataclass
class ParsedFile:
    """A file's rows as cells, with what applies across rows: resolved names and repeats."""

    header: list[str]
    rows: list[tuple[int, int]]  # (line, field count): the cells are in parsed
    parsed: list[tuple[dict[str, str], list[dict[str, Any]]]] = field(default_factory=list)
    known: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    repeats: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Data rows in the file."""
        return len(self.rows)


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


def _repeats(
    parsed: list[tuple[dict[str, str], list[dict[str, Any]]]],
) -> dict[int, list[dict[str, Any]]]:
    """Per file row, an error for each id, sku or barcode an earlier row of the file has."""
    first: dict[tuple[str, str], int] = {}
    found: dict[int, list[dict[str, Any]]] = {}
    for index, (row, _errors) in enumerate(parsed):
        for column in UNIQUE:
            value = row.get(column)
            if value is None:
                continue
            key = (column, value.lower() if column == "id" else value)
            if key in first:
                message = f"repeats row {first[key]} of this file"
                found.setdefault(index, []).append(
                    {"field": column, "message": message, "type": "duplicate"}
                )
            else:
                first[key] = index
    return found


async def parse(
    request: web.Request,
    identity: Identity,
    org: str,
    header: list[str],
    rows: list[tuple[int, list[str]]],
) -> ParsedFile:
    """Every row's cells, the names the file uses resolved, repeats found. The per-row work
    runs in a thread: a 100,000-row file takes seconds, which would stall every other request
    of this process on the event loop."""
    file = await asyncio.to_thread(_cells_and_repeats, header, rows)
    for column, table in NAMED.items():
        wanted = {row[column] for row, _errors in file.parsed if column in row}
        file.known[column] = await names(request, identity, org, table, wanted)
    return file


def _cells_and_repeats(header: list[str], rows: list[tuple[int, list[str]]]) -> ParsedFile:
    """The ParsedFile before its names are resolved."""
    shape = [(line, len(fields)) for line, fields in rows]
    file = ParsedFile(header, shape, [cells(header, fields) for _line, fields in rows])
    file.repeats = _repeats(file.parsed)
    return file


def _reconcile(
    column: str, row: dict[str, Any], known: dict[str, list[str]], errors: list[dict[str, Any]]
) -> None:
    """Set row[column_id] from the name in row[column], or check it names the id given."""
    name, given = row.pop(column), row.get(column + "_id")
    ids = known.get(name, [])
    if given is not None:
        try:
            ok = str(UUID(given)) in ids
        except ValueError:
            return  # the id column's own error says it
        if not ok:
            message = f"{name!r} is not the {column} {column}_id names"
            errors.append({"field": column, "message": message, "type": "mismatch"})
        return
    if len(ids) == 1:
        row[column + "_id"] = ids[0]
        return
    what = "no" if not ids else "several"
    errors.append({"field": column, "message": f"{what} {column} named {name!r}", "type": "name"})


def batch(file: ParsedFile, start: int, stop: int) -> Batch:
    """The Batch of the file's rows start..stop (indexes and lines the file's)."""
    rows = Batch(total=file.total)
    for index in range(start, min(stop, file.total)):
        line, count = file.rows[index]
        cell_row, formulas = file.parsed[index]
        row: dict[str, Any] = dict(cell_row)
        errors: list[dict[str, Any]] = [*formulas, *file.repeats.get(index, [])]
        rows.lines[index] = line
        if count != len(file.header):
            message = f"{count} fields, header has {len(file.header)}"
            errors.append({"field": "row", "message": message})
        for column in NAMED:
            if column in row:
                _reconcile(column, row, file.known[column], errors)
        rows.add(index, row, ProductRow, partial=False, errors=errors)
    return rows
