"""Request bodies of products, categories, suppliers and locations."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from proxy.api.fields import Body, Count, Currency, Email, money, partial, text


class ProductIn(Body):
    """A product as the client may write it (no organization_id, id, timestamps or stock)."""

    sku: Annotated[str, text(1, 64)] = Field(description="Unique within the organization")
    name: Annotated[str, text(1, 200)]
    barcode: Annotated[str, text(1, 64)] | None = None
    description: Annotated[str, text(0, 2000)] | None = None
    unit: Annotated[str, text(1, 32)] = "each"
    price: Annotated[Decimal, *money(12, 2)] = Decimal("0")
    unit_cost: Annotated[Decimal, *money(14, 4)] = Decimal("0")
    reorder_point: Count | None = None
    safety_stock: Count = 0
    low_stock_threshold: Count | None = None
    category_id: UUID | None = None
    supplier_id: UUID | None = None
    active: bool = True


class CategoryIn(Body):
    """A category; parent_id nests it under another of the same organization."""

    name: Annotated[str, text(1, 200)]
    parent_id: UUID | None = None
    description: Annotated[str, text(0, 2000)] | None = None


class SupplierIn(Body):
    """A supplier."""

    name: Annotated[str, text(1, 200)]
    contact_name: Annotated[str, text(0, 200)] | None = None
    email: Email | None = None
    phone: Annotated[str, text(0, 50)] | None = None
    lead_time_days: int = Field(7, ge=0, le=365)
    currency: Currency = "USD"
    notes: Annotated[str, text(0, 2000)] | None = None
    active: bool = True


class LocationIn(Body):
    """A warehouse or store."""

    name: Annotated[str, text(1, 200)]
    code: Annotated[str, text(1, 32)]
    kind: Literal["warehouse", "store"]
    address: Annotated[str, text(0, 1000)] | None = None
    active: bool = True


ProductPatch = partial(ProductIn, "ProductPatch")
CategoryPatch = partial(CategoryIn, "CategoryPatch")
SupplierPatch = partial(SupplierIn, "SupplierPatch")
LocationPatch = partial(LocationIn, "LocationPatch")


class PriceChange(Body):
    """One row of a bulk price/threshold change: the product's id and at least one change
    (fields left out stay; null resets the nullable low_stock_threshold / reorder_point)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 2})  # id and a change

    id: UUID
    # Absent is None, an explicit null is refused (the columns are not nullable): a type can
    # say only one of the two, and the contract must keep refusing null.
    price: Annotated[Decimal, *money(12, 2)] = Field(None, validate_default=False)  # type: ignore[assignment]
    unit_cost: Annotated[Decimal, *money(14, 4)] = Field(None, validate_default=False)  # type: ignore[assignment]
    safety_stock: Count = Field(None, validate_default=False)  # type: ignore[assignment]
    low_stock_threshold: Count | None = None
    reorder_point: Count | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> PriceChange:
        if not self.model_fields_set - {"id"}:
            raise ValueError("send at least one of " + ", ".join(CHANGES))
        return self


CHANGES = ("price", "unit_cost", "safety_stock", "low_stock_threshold", "reorder_point")
