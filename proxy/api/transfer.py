"""CSV export of the list routes' rows: all of them, streamed, with cells no spreadsheet runs.

Upstream is read with keyset paging: the rows in (created_at, id) order, a unique order, `PAGE`
at a time, each page after the last row of the one before (`or=(created_at.gt.T,and(created_at
.eq.T,id.gt.I))`), until a page comes back empty. An empty page ends the file, not a short one,
so a PostgREST max-rows below PAGE can never cut it. Each page is written to the client as it
arrives, so the proxy holds one page whatever the row count. The first page is read before the
answer starts (an error there is an ordinary JSON error); when a later page fails, the cut is
logged and the connection closed without the terminating chunk: the client sees a broken
download, never a short file that looks whole.

Cells (csvsafe): the numbers PostgREST returns for a column declared numeric in NUMBERS are
written as they are (a -3 adjustment stays -3); every other cell (text, ids, timestamps,
booleans) goes through csvsafe.guard, so text starting with = + - @ tab or CR gets a `'`.

The product export's columns are productexport's: every column the import reads, the names of
category and supplier, and the stock per location, so that the file imports back unchanged."""

from __future__ import annotations

import csv
import io
import json
import logging
from decimal import Decimal
from typing import Any

from aiohttp import web

from proxy.api import catalog, operations, postgrest, tenancy
from proxy.api.csvsafe import guard
from proxy.api.inputs import parse_query
from proxy.api.params import quoted
from proxy.api.productexport import SELECT, product_columns
from proxy.api.reads import scoped
from proxy.api.route import Route
from proxy.gate.gate import identity_of
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError

log = logging.getLogger(__name__)
PAGE = 1000  # rows per upstream request (PostgREST's default max-rows)

COLUMNS = {  # products: productexport's
    "orders": "id,number,kind,status,location_id,supplier_id,customer_name,currency,created_at",
    "stock_movements": "id,created_at,kind,product_id,location_id,lot_id,quantity,unit_cost,"
    "order_id,reason",
}
# The columns whose values are numbers (written as numbers, never prefixed).
NUMBERS = {
    "orders": frozenset({"number"}),
    "stock_movements": frozenset({"id", "quantity", "unit_cost"}),
}


def _list_route(path: str) -> Route:
    return next(
        r for r in [*catalog.ROUTES, *operations.ROUTES] if r.path == path and r.method == "GET"
    )


def cell(value: Any, numeric: bool) -> str:
    """One CSV cell: a number of a numeric column as it is, anything else as guarded text."""
    if value is None:
        return ""
    is_number = isinstance(value, int | Decimal) and not isinstance(value, bool)
    if numeric and is_number:
        return str(value)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif is_number:
        text = str(value)
    else:  # an embedded object or array
        text = json.dumps(value, default=str, ensure_ascii=False)
    return guard(text)


def cells(row: dict[str, Any], columns: list[str], numeric: list[bool]) -> list[str]:
    """The CSV cells of one PostgREST row, in the order of columns."""
    return [cell(row.get(c), n) for c, n in zip(columns, numeric, strict=True)]


def lines(rows: list[list[str]]) -> bytes:
    """rows as CSV (RFC 4180: CRLF, quoted where needed), UTF-8."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def page(
    request: web.Request,
    identity: Identity,
    target: str,
    params: list[tuple[str, str]],
    after: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The PAGE rows that follow `after` (the last row sent; None: the first page)."""
    if after is not None:
        at, key = quoted(str(after["created_at"])), quoted(str(after["id"]))
        params = [*params, ("or", f"(created_at.gt.{at},and(created_at.eq.{at},id.gt.{key}))")]
    reply = await postgrest.call(request, identity, "GET", target, params=params)
    rows = json.loads(reply.body, parse_float=Decimal) if reply.body else []
    if after is not None and any(row.get("id") == after["id"] for row in rows):
        raise ProxyError("the keyset did not advance")  # never loop over the same page
    return rows


async def export(request: web.Request, route: Route) -> web.StreamResponse:
    """Stream every filtered row of route.target as CSV, page by page."""
    identity = identity_of(request)
    listing = parse_query(route, request.query)
    org = tenancy.chosen(request, identity)
    params = [*route.fixed, *listing.params, *scoped(route, org)]
    for spec, value in listing.resolvers:
        params.extend(await spec.resolve(request, identity, value, org))
    shape = None
    if route.target == "products":
        shape = await product_columns(request, identity, org)
        columns, numeric, select = shape.columns, shape.numeric(), SELECT
    else:
        columns = select = COLUMNS[route.target].split(",")
        numeric = [name in NUMBERS[route.target] for name in columns]
    params += [
        ("select", ",".join([*select, *listing.embeds])),
        ("order", "created_at.asc,id.asc"),
        ("limit", str(PAGE)),
    ]
    rows = await page(request, identity, route.target, params, None)
    name = request.path.rsplit("/", 1)[1]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)  # the RateLimit headers go with it
    sent = 0
    try:
        await response.write(lines([columns]))
        while rows:
            shaped = rows if shape is None else [shape.flat(row) for row in rows]
            await response.write(lines([cells(row, columns, numeric) for row in shaped]))
            sent += len(rows)
            rows = await page(request, identity, route.target, params, rows[-1])
    except ConnectionResetError:
        log.info("export %s: the client left after %d rows", request.get("request_id"), sent)
        return response
    except (ProxyError, ValueError) as exc:  # an error answer, or a page that is not JSON
        log.error(
            "export cut: %s after %d rows of %s, an upstream page failed (%s %s); connection"
            " closed without the final chunk",
            request.get("request_id"),
            sent,
            route.target,
            getattr(exc, "status", "-"),
            exc,
        )
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def _export(name: str, target: str, list_path: str) -> Route:
    source = _list_route(list_path)
    return Route(
        "GET",
        f"/export/{name}.csv",
        "custom",
        target,
        f"Export {name} as CSV",
        "Export",
        query=source.query,
        handler=export,
        extra={"csv": True},
    )


ROUTES: list[Route] = [
    _export("products", "products", "/products"),
    _export("orders", "orders", "/orders"),
    _export("movements", "stock_movements", "/stock/movements"),
]
