"""Bulk product writes: create, upsert by sku, price/threshold changes by id. Each request is
one call of `public.bulk_upsert_products` (one transaction): all rows are written or none, and
every bad row is named by its index (see proxy/api/batch.py and docs/API.md)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from proxy.api import batch
from proxy.api.bulk_models import BulkChangesIn, BulkProductsIn, BulkResult
from proxy.api.catalog_models import PriceChange, ProductIn
from proxy.api.inputs import parse_query
from proxy.api.problems import ApiError
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.api.settings import api_settings
from proxy.gate.gate import identity_of

MANAGERS = "manager and above"
# route path + method -> (row model, SQL mode, partial rows)
MODES: dict[tuple[str, str], tuple[type[BaseModel], str, bool]] = {
    ("POST", "/products/bulk"): (ProductIn, "insert", False),
    ("POST", "/products/bulk-upsert"): (ProductIn, "upsert", False),
    ("PATCH", "/products/bulk"): (PriceChange, "update", True),
}


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (400 when it is not)."""
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ApiError(400, "bad_request", "Body must be JSON") from None


async def bulk_write(request: web.Request, route: Route) -> web.StreamResponse:
    """Validate every row, then write them all in one transaction (or none)."""
    identity = identity_of(request)
    parse_query(route, request.query)
    model, mode, partial = MODES[(route.method, route.path)]
    rows = batch.validated(
        await read_json(request), model, api_settings().bulk_max, partial=partial
    )
    result = await batch.commit(request, identity, route, rows, mode)
    return envelope(result, status=route.status)


def _route(method: str, path: str, summary: str, body: type[BaseModel], status: int = 200) -> Route:
    return Route(
        method,
        path,
        "call",
        batch.FUNCTION,
        summary,
        "Products",
        body=body,
        org="arg",
        roles=MANAGERS,
        status=status,
        handler=bulk_write,
        responses=(409,),
        extra={"response": BulkResult},
    )


ROUTES: list[Route] = [
    _route(
        "POST",
        "/products/bulk",
        "Create up to NIMBUS_BULK_MAX products in one transaction (all or nothing)",
        BulkProductsIn,
        201,
    ),
    _route(
        "PATCH",
        "/products/bulk",
        "Change prices/thresholds of products by id in one transaction (all or nothing)",
        BulkChangesIn,
    ),
    _route(
        "POST",
        "/products/bulk-upsert",
        "Insert or replace products by sku in one transaction (all or nothing)",
        BulkProductsIn,
    ),
]
