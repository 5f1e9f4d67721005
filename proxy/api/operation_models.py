"""Request bodies of orders, stock movements and settings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, model_validator

from proxy.api.fields import Body, Currency, delta, money, text


class OrderItemIn(Body):
    """One order line."""

    product_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]
    unit_price: Annotated[Decimal, *money(12, 2)] | None = None


class OrderIn(Body):
    """A new sales or purchase order (Idempotency-Key header makes retries safe)."""

    kind: Literal["sales", "purchase"]
    location_id: UUID
    items: list[OrderItemIn] = Field(min_length=1, max_length=500)
    supplier_id: UUID | None = None
    customer_name: Annotated[str, text(1, 200)] | None = None
    notes: Annotated[str, text(0, 2000)] | None = None
    status: Literal["draft", "confirmed"] = "confirmed"


class DraftOrderIn(Body):
    """The full new content of a draft order."""

    location_id: UUID
    items: list[OrderItemIn] = Field(min_length=1, max_length=500)
    supplier_id: UUID | None = None
    customer_name: Annotated[str, text(1, 200)] | None = None
    notes: Annotated[str, text(0, 2000)] | None = None


class LotIn(Body):
    """Lot number and expiry of a received product."""

    product_id: UUID
    lot_number: Annotated[str, text(1, 100)]
    expiry_date: date | None = None


class StatusIn(Body):
    """The next status of an order (lots: for receiving a purchase order)."""

    status: Literal["confirmed", "fulfilled", "received", "cancelled"]
    lots: list[LotIn] | None = Field(None, max_length=500)


class AdjustmentIn(Body):
    """A stock correction at one location (positive adds, negative removes)."""

    product_id: UUID
    location_id: UUID
    quantity_delta: Annotated[Decimal, *delta(14, 3)]
    reason: Annotated[str, text(1, 500)]
    lot_number: Annotated[str, text(1, 100)] | None = None
    expiry_date: date | None = None
    unit_cost: Annotated[Decimal, *money(14, 4)] | None = None


class TransferIn(Body):
    """Stock moved between two locations."""

    product_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]


class FulfilLineIn(Body):
    """Part of a sales order line to ship, from a named lot or FEFO."""

    product_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]
    lot_number: Annotated[str, text(1, 100)] | None = None


class FulfilmentIn(Body):
    """What ships now of a sales order; the rest stays reserved (a backorder)."""

    lines: list[FulfilLineIn] = Field(min_length=1, max_length=500)


class ReceiptLineIn(Body):
    """Part of a purchase order line received, into a lot, at a cost."""

    product_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]
    lot_number: Annotated[str, text(1, 100)] | None = None
    expiry_date: date | None = None
    unit_cost: Annotated[Decimal, *money(14, 4)] | None = None


class ReceiptIn(Body):
    """What arrived now of a purchase order; the rest stays open (a backorder)."""

    lines: list[ReceiptLineIn] = Field(min_length=1, max_length=500)


class CloseIn(Body):
    """Why a partially fulfilled or received order is closed short."""

    reason: Annotated[str, text(1, 500)]


class ReturnLineIn(Body):
    """Part of an order line coming back (sales) or going back to the supplier (purchase)."""

    product_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]
    lot_number: Annotated[str, text(1, 100)] | None = None


class ReturnIn(Body):
    """A customer return (sales order) or a return to the supplier (purchase order)."""

    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    reason: Annotated[str, text(1, 500)] | None = None


class WriteOffIn(Body):
    """Stock written off at one location: damaged, expired or lost."""

    product_id: UUID
    location_id: UUID
    quantity: Annotated[Decimal, *money(14, 3, positive=True)]
    reason: Literal["damaged", "expired", "lost"]
    lot_number: Annotated[str, text(1, 100)] | None = None


class ExpiredWriteOffIn(Body):
    """Write off every expired lot of one location (all active locations when omitted)."""

    location_id: UUID | None = None


class CountIn(Body):
    """A new stock count at one location."""

    location_id: UUID
    note: Annotated[str, text(0, 2000)] | None = None


class CountLineIn(Body):
    """What was counted of a product (or of one of its lots) at the count's location."""

    product_id: UUID
    counted: Annotated[Decimal, *money(14, 3)]
    lot_number: Annotated[str, text(1, 100)] | None = None


SETTINGS_ROW = {"organization_id", "value", "updated_at"}  # the keys GET /settings answers


class SettingsIn(Body):
    """The organization's settings document (missing keys take their defaults)."""

    currency: Currency | None = None
    timezone: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")
    default_low_stock_threshold: int | None = Field(None, ge=0, le=2_147_483_647)
    expiry_warning_days: int | None = Field(None, ge=1, le=365)
    forecast_horizon_days: int | None = Field(None, ge=1, le=365)
    service_level: float | None = Field(None, gt=0.5, le=0.9999, allow_inf_nan=False)
    costing_method: Literal["weighted_average", "fifo"] | None = None
    over_receipt_tolerance: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        """Accept back what `GET /settings` answers (`{organization_id, value, updated_at}`):
        its `value` is the document."""
        if isinstance(data, dict) and "value" in data and set(data) <= SETTINGS_ROW:
            return data["value"]
        return data


class OrganizationIn(Body):
    """A new organization; the caller becomes its owner."""

    name: Annotated[str, text(1, 200)]
    slug: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
