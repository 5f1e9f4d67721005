"""Request bodies of products, categories, suppliers and locations."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from proxy.api.fields import INT4, Body, Count, Currency, Email, money, partial, text


class ProductIn(Body):
    """A product as the client may write it (no organization_id, id, timestamps or stock)."""

    sku: text(1, 64) = Field(description="Unique within the organization")
    name: text(1, 200)
    barcode: text(1, 64) | None = None
    description: text(0, 2000) | None = None
    unit: text(1, 32) = "each"
    price: money(12, 2) = 0
    unit_cost: money(14, 4) = 0
    reorder_point: Count | None = None
    safety_stock: Count = 0
    low_stock_threshold: Count | None = None
    category_id: UUID | None = None
    supplier_id: UUID | None = None
    active: bool = True


class CategoryIn(Body):
    """A category; parent_id nests it under another of the same organization."""

    name: text(1, 200)
    parent_id: UUID | None = None
    description: text(0, 2000) | None = None


class SupplierIn(Body):
    """A supplier."""

    name: text(1, 200)
    contact_name: text(0, 200) | None = None
    email: Email | None = None
    phone: text(0, 50) | None = None
    lead_time_days: int = Field(7, ge=0, le=365)
    currency: Currency = "USD"
    notes: text(0, 2000) | None = None
    active: bool = True


class LocationIn(Body):
    """A warehouse or store."""

    name: text(1, 200)
    code: text(1, 32)
    kind: Literal["warehouse", "store"]
    address: text(0, 1000) | None = None
    active: bool = True


ProductPatch = partial(ProductIn, "ProductPatch")
CategoryPatch = partial(CategoryIn, "CategoryPatch")
SupplierPatch = partial(SupplierIn, "SupplierPatch")
LocationPatch = partial(LocationIn, "LocationPatch")


class PriceChange(Body):
    """One row of a bulk price/threshold change."""

    id: UUID
    price: money(12, 2) | None = None
    unit_cost: money(14, 4) | None = None
    low_stock_threshold: Count | None = None
    reorder_point: int | None = Field(None, ge=0, le=INT4)
