"""Route map of lots: the list with its filters, and quarantine (set_lot_status).

A lot's stored status is set by people (quarantine) and by the expiry scan, which runs with every
analytics refresh: between midnight and the next scan a lot past its date still says
`available`. The status and expiring_within filters therefore judge the date too (the rule of
private.lot_usable): `expired` is status expired OR expiry_date before today. "Today" is the UTC
date, the database's current_date on Supabase; a cached answer is at most the cache TTL old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from proxy.api.fields import Body
from proxy.api.inputs import path_id
from proxy.api.params import Query, eq
from proxy.api.route import Route
from proxy.gate.identity import Identity

STATUSES = ("available", "quarantined", "expired")
LOT_SELECT = "*,product:products(id,sku,name,unit),location:locations(id,code,name)"


def today() -> str:
    """Today's date (UTC) as PostgREST filters want it."""
    return datetime.now(UTC).date().isoformat()


async def status_filter(
    _request: web.Request, _identity: Identity, value: str, _org: str | None
) -> list[tuple[str, str]]:
    """`status=` as the lot is today: expired when stored so or past its date."""
    day = today()
    if value == "expired":
        return [("or", f"(status.eq.expired,expiry_date.lt.{day})")]
    return [
        ("status", f"eq.{value}"),
        ("or", f"(expiry_date.is.null,expiry_date.gte.{day})"),
    ]


async def expiring_filter(
    _request: web.Request, _identity: Identity, value: int, _org: str | None
) -> list[tuple[str, str]]:
    """`expiring_within=N`: expiry date from today to N days ahead (both included)."""
    start = datetime.now(UTC).date()
    end = start + timedelta(days=int(value))
    return [("and", f"(expiry_date.gte.{start.isoformat()},expiry_date.lte.{end.isoformat()})")]


async def stocked_filter(
    _request: web.Request, _identity: Identity, value: bool, _org: str | None
) -> list[tuple[str, str]]:
    """`in_stock=true|false`: lots holding stock, or emptied ones."""
    return [("quantity", "gt.0" if value else "eq.0")]


class LotStatusIn(Body):
    """A lot's new status: quarantined (held back) or available (released)."""

    status: Literal["available", "quarantined"]


def status_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """set_lot_status's arguments: the path's lot id and the body's status."""
    assert isinstance(body, LotStatusIn)  # the route's body model
    return {"lot_id": path_id(request), "status": body.status}


LOT_QUERY = (
    eq("product", "product_id", description="product id"),
    eq("location", "location_id", description="location id"),
    Query(
        "status",
        "string",
        description="as of today: expired = status expired or past its expiry date",
        enum=STATUSES,
        resolve=status_filter,
    ),
    Query(
        "expiring_within",
        "integer",
        description="expiry date within this many days from today (today included)",
        minimum=0,
        maximum=3650,
        resolve=expiring_filter,
    ),
    Query(
        "in_stock",
        "boolean",
        description="lots that hold stock (true) or are empty (false)",
        resolve=stocked_filter,
    ),
)

ROUTES: list[Route] = [
    Route(
        "GET",
        "/lots",
        "list",
        "lots",
        "List lots (batches with expiry dates), soonest expiry first",
        "Stock",
        select=LOT_SELECT,
        query=LOT_QUERY,
        sort=("expiry_date", "received_at", "lot_number", "quantity", "created_at"),
        default_sort="expiry_date",
    ),
    Route(
        "PATCH",
        "/lots/{id}/status",
        "call",
        "rpc/set_lot_status",
        "Quarantine a lot, or release it (an expired lot cannot change)",
        "Stock",
        body=LotStatusIn,
        org="none",
        args=status_args,
        roles="manager and above",
        responses=(409,),
    ),
]
