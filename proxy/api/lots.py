"""Route map of lots: the list with its filters, and quarantine (set_lot_status).

A lot's stored status is set by people (quarantine) and by the expiry scan, which runs with every
analytics refresh: between midnight and the next scan a lot past its date still says
`available`. The status and expiring_within filters therefore judge the date too (the rule of
private.lot_usable): `expired` is status expired OR expiry_date before today. "Today" is each
lot's organization's date (its `timezone` setting, else UTC: proxy/api/orgdates.py), as the SQL
rules judge it; a cached answer is at most the cache TTL old.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from proxy.api import orgdates
from proxy.api.fields import Body
from proxy.api.inputs import path_id
from proxy.api.params import Query, eq
from proxy.api.route import Route
from proxy.gate.identity import Identity

STATUSES = ("available", "quarantined", "expired")
LOT_SELECT = "*,product:products(id,sku,name,unit),location:locations(id,code,name)"


async def status_filter(
    request: web.Request, identity: Identity, value: str, org: str | None
) -> list[tuple[str, str]]:
    """`status=` as the lot is today, by its organization's date: expired when stored so or
    past its date."""
    utc_day, other = await orgdates.dates(request, identity, org)
    if value == "expired":
        past = orgdates.by_date(lambda day: f"expiry_date.lt.{day}", utc_day, other)
        return [("or", f"(status.eq.expired,{past})")]
    good = orgdates.by_date(lambda day: f"expiry_date.gte.{day}", utc_day, other)
    return [("status", f"eq.{value}"), ("or", f"(expiry_date.is.null,{good})")]


async def expiring_filter(
    request: web.Request, identity: Identity, value: int, org: str | None
) -> list[tuple[str, str]]:
    """`expiring_within=N`: expiry date from today to N days ahead (both included), by the
    lot's organization's date."""
    utc_day, other = await orgdates.dates(request, identity, org)

    def window(day: dt.date) -> str:
        end = day + dt.timedelta(days=int(value))
        return f"and(expiry_date.gte.{day},expiry_date.lte.{end})"

    return [("or", f"({orgdates.by_date(window, utc_day, other)})")]


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
        extra_deps=orgdates.DEPENDS_ON,
    ),
    Query(
        "expiring_within",
        "integer",
        description="expiry date within this many days from today (today included)",
        minimum=0,
        maximum=3650,
        resolve=expiring_filter,
        extra_deps=orgdates.DEPENDS_ON,
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
