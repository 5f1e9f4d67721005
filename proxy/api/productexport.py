"""The product export's columns: every column the import reads (so the file imports back as it
is; proxy/api/importfile.py), the category and supplier names beside their ids, and the stock:
on_hand over all locations and one `on_hand:<location code>` column per location.

The locations are read once, before the first page (the columns must be known for the header);
the stock comes embedded in each page (`stock:stock_levels(location_id,on_hand)`), so the export
still holds one page at a time. A location with no stock level for a product is an empty cell;
quantities are written as PostgREST gives them (the column's decimals)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from proxy.api import postgrest
from proxy.api.importfile import IGNORED, READ, STOCK_PREFIX
from proxy.gate.identity import Identity

FIELDS = [*READ, *IGNORED]  # every column the import reads, then those it skips
SELECT = [
    *(f for f in FIELDS if f not in ("category", "supplier", "on_hand")),
    "category:categories(name)",
    "supplier:suppliers(name)",
    "stock:stock_levels(location_id,on_hand)",
]
NUMBERS = frozenset(
    {"price", "unit_cost", "low_stock_threshold", "reorder_point", "safety_stock", "on_hand"}
)


@dataclass(frozen=True)
class ProductColumns:
    """The header of one product export and how a PostgREST row becomes its cells."""

    locations: tuple[tuple[str, str], ...]  # (location id, column), by code

    @property
    def columns(self) -> list[str]:
        """The CSV header."""
        return [*FIELDS, *(column for _id, column in self.locations)]

    def numeric(self) -> list[bool]:
        """Which columns hold numbers (written as they are, never quoted)."""
        return [c in NUMBERS or c.startswith(STOCK_PREFIX) for c in self.columns]

    def flat(self, row: dict[str, Any]) -> dict[str, Any]:
        """row with the names and the stock as plain cells."""
        out = dict(row)
        for name in ("category", "supplier"):
            embedded = row.get(name)
            out[name] = embedded.get("name") if isinstance(embedded, dict) else None
        levels = {s["location_id"]: s["on_hand"] for s in row.get("stock") or []}
        out["on_hand"] = sum(levels.values(), Decimal(0))
        for location, column in self.locations:
            out[column] = levels.get(location)
        return out


async def product_columns(
    request: web.Request, identity: Identity, org: str | None
) -> ProductColumns:
    """The columns for the caller's locations (of the chosen organization, if one is)."""
    params = [("select", "id,code"), ("order", "code.asc,id.asc")]
    if org is not None:
        params.append(("organization_id", f"eq.{org}"))
    reply = await postgrest.call(request, identity, "GET", "locations", params=params)
    seen: set[str] = set()
    locations = []
    for row in reply.json() or []:
        column = STOCK_PREFIX + row["code"]
        if column in seen:  # the same code in two of the caller's organizations
            column += ":" + row["id"]
        seen.add(column)
        locations.append((row["id"], column))
    return ProductColumns(tuple(locations))
