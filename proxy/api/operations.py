"""Route map of orders, stock movements, analytics and settings."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from proxy.api.inputs import path_id
from proxy.api.lots import ROUTES as LOT_ROUTES
from proxy.api.members import ROUTES as MEMBER_ROUTES
from proxy.api.operation_models import (
    AdjustmentIn,
    CloseIn,
    CountIn,
    CountLineIn,
    DraftOrderIn,
    ExpiredWriteOffIn,
    FulfilmentIn,
    OrderIn,
    OrganizationIn,
    ReceiptIn,
    ReturnIn,
    SettingsIn,
    StatusIn,
    TransferIn,
    WriteOffIn,
)
from proxy.api.params import Query, arg, eq
from proxy.api.problems import validation
from proxy.api.route import Route

ORDER_SELECT = (
    "*,items:order_items(id,product_id,line_no,quantity,unit_price,unit_cost,done_quantity,"
    "returned_quantity,short_quantity)"
)
STATUSES = (
    "draft",
    "confirmed",
    "partially_fulfilled",
    "fulfilled",
    "partially_received",
    "received",
    "cancelled",
)
KINDS = ("receipt", "sale", "adjustment", "transfer_out", "transfer_in", "return", "write_off")
IDEMPOTENCY_MAX = 255
COUNT_STATUSES = ("open", "posted", "cancelled")
COUNT_SELECT = (
    "*,lines:stock_count_lines(*,product:products(sku,name),lot:lots(lot_number,expiry_date))"
)


def sent(body: BaseModel | None) -> dict[str, Any]:
    """The body's fields that were given a value, as JSON (none without a body)."""
    return body.model_dump(mode="json", exclude_none=True) if body is not None else {}


def order_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """create_order's arguments: the body plus the Idempotency-Key header."""
    args = sent(body)
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        if not 1 <= len(key) <= IDEMPOTENCY_MAX:
            raise validation([{"field": "Idempotency-Key", "message": "1 to 255 characters"}])
        args["idempotency_key"] = key
    return args


def replenishment_args(_body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """create_replenishment_orders' arguments: the Idempotency-Key header, if any."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return {}
    if not 1 <= len(key) <= IDEMPOTENCY_MAX:
        raise validation([{"field": "Idempotency-Key", "message": "1 to 255 characters"}])
    return {"idempotency_key": key}


def status_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """update_order_status's arguments: the path's order id and the body."""
    return {"order_id": path_id(request), **sent(body)}


def draft_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """update_draft_order's arguments (the SQL function is requested, see docs/API.md)."""
    return {"order_id": path_id(request), **sent(body)}


def count_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """A stock count function's arguments: the path's count id and the body, if any."""
    return {"count_id": path_id(request), **sent(body)}


def order_call_args(body: BaseModel | None, request: web.Request) -> dict[str, Any]:
    """Arguments of an order function: the path's order id and the body (fulfil_order,
    receive_order, close_order, return_order)."""
    return {"order_id": path_id(request), **sent(body)}


def dates(column: str) -> tuple[Query, Query]:
    """`from` (inclusive) and `to` (exclusive) on a timestamp column."""
    return (
        Query("from", "datetime", column, "gte", "from this date-time (inclusive)"),
        Query("to", "datetime", column, "lt", "until this date-time (exclusive)"),
    )


def analytics(path: str, fn: str, summary: str, *query: Query) -> Route:
    """A GET of an analytics function's JSON document."""
    return Route(
        "GET",
        "/analytics/" + path,
        "read",
        "rpc/" + fn,
        summary,
        "Analytics",
        query=query,
        org="arg",
    )


SPAN = (arg("from", "from", "date"), arg("to", "to", "date"))
REORDER = (
    arg("location", "location_id", "uuid"),
    arg("supplier", "supplier_id", "uuid"),
    arg("limit", "line_limit", "integer", minimum=1, maximum=10000),
)

ROUTES: list[Route] = [
    Route(
        "POST",
        "/organizations",
        "call",
        "rpc/create_organization",
        "Create an organization (you become its owner)",
        "Organizations",
        body=OrganizationIn,
        org="none",
        status=201,
        roles="any signed-in user",
    ),
    Route(
        "GET",
        "/orders",
        "list",
        "orders",
        "List orders",
        "Orders",
        select=ORDER_SELECT,
        query=(
            eq("status", "status", enum=STATUSES),
            eq("kind", "kind", enum=("sales", "purchase")),
            eq("supplier", "supplier_id"),
            eq("location", "location_id"),
            *dates("created_at"),
        ),
        sort=("created_at", "number", "status"),
        default_sort="-created_at",
    ),
    Route(
        "GET",
        "/orders/{id}",
        "get",
        "orders",
        "Get an order with its items",
        "Orders",
        select=ORDER_SELECT,
    ),
    Route(
        "POST",
        "/orders",
        "call",
        "rpc/create_order",
        "Create an order (honours Idempotency-Key)",
        "Orders",
        body=OrderIn,
        org="arg",
        args=order_args,
        status=201,
        roles="sales: staff and above; purchases: manager and above",
        responses=(409,),
    ),
    Route(
        "PUT",
        "/orders/{id}",
        "call",
        "rpc/update_draft_order",
        "Replace a draft order's lines and details (draft only)",
        "Orders",
        body=DraftOrderIn,
        org="none",
        args=draft_args,
        roles="as POST /orders",
        responses=(409, 501),
    ),
    Route(
        "PATCH",
        "/orders/{id}/status",
        "call",
        "rpc/update_order_status",
        "Move an order to its next status",
        "Orders",
        body=StatusIn,
        org="none",
        args=status_args,
        roles="sales: staff and above; purchases: manager and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/orders/{id}/fulfilment",
        "call",
        "rpc/fulfil_order",
        "Fulfil part of a sales order, line by line and lot by lot",
        "Orders",
        body=FulfilmentIn,
        org="none",
        args=order_call_args,
        roles="staff and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/orders/{id}/receipt",
        "call",
        "rpc/receive_order",
        "Receive part of a purchase order, line by line and lot by lot",
        "Orders",
        body=ReceiptIn,
        org="none",
        args=order_call_args,
        roles="manager and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/orders/{id}/close",
        "call",
        "rpc/close_order",
        "Close a partially fulfilled or received order short",
        "Orders",
        body=CloseIn,
        org="none",
        args=order_call_args,
        roles="sales: staff and above; purchases: manager and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/orders/{id}/returns",
        "call",
        "rpc/return_order",
        "Return goods: from the customer (sales) or to the supplier (purchase)",
        "Orders",
        body=ReturnIn,
        org="none",
        args=order_call_args,
        status=201,
        roles="sales: staff and above; purchases: manager and above",
        responses=(409,),
    ),
    Route(
        "GET",
        "/stock/movements",
        "list",
        "stock_movements",
        "The stock ledger",
        "Stock",
        query=(
            eq("product", "product_id"),
            eq("location", "location_id"),
            eq("kind", "kind", enum=KINDS),
            *dates("created_at"),
        ),
        sort=("created_at",),
        default_sort="-created_at",
    ),
    Route(
        "POST",
        "/stock/adjustments",
        "call",
        "rpc/adjust_stock",
        "Adjust stock",
        "Stock",
        body=AdjustmentIn,
        org="none",
        status=201,
        roles="staff and above",
    ),
    Route(
        "POST",
        "/stock/transfers",
        "call",
        "rpc/transfer_stock",
        "Transfer stock",
        "Stock",
        body=TransferIn,
        org="none",
        status=201,
        roles="staff and above",
    ),
    Route(
        "GET",
        "/counts",
        "list",
        "stock_counts",
        "List stock counts",
        "Counts",
        query=(
            eq("status", "status", enum=COUNT_STATUSES),
            eq("location", "location_id"),
            *dates("created_at"),
        ),
        sort=("created_at", "posted_at", "status"),
        default_sort="-created_at",
    ),
    Route(
        "GET",
        "/counts/{id}",
        "get",
        "stock_counts",
        "Get a stock count with its lines",
        "Counts",
        select=COUNT_SELECT,
    ),
    Route(
        "POST",
        "/counts",
        "call",
        "rpc/open_stock_count",
        "Open a stock count at a location",
        "Counts",
        body=CountIn,
        org="none",
        status=201,
        roles="staff and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/counts/{id}/lines",
        "call",
        "rpc/record_stock_count",
        "Record a counted quantity (again: replaces the line)",
        "Counts",
        body=CountLineIn,
        org="none",
        args=count_args,
        roles="staff and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/counts/{id}/post",
        "call",
        "rpc/post_stock_count",
        "Post a stock count: every variance as one atomic set of adjustments",
        "Counts",
        org="none",
        args=count_args,
        roles="manager and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/counts/{id}/cancel",
        "call",
        "rpc/cancel_stock_count",
        "Cancel an open stock count",
        "Counts",
        org="none",
        args=count_args,
        roles="manager and above, or the user who opened it",
        responses=(409,),
    ),
    *LOT_ROUTES,
    *MEMBER_ROUTES,
    Route(
        "POST",
        "/stock/write-offs",
        "call",
        "rpc/write_off_stock",
        "Write stock off (damaged, expired, lost)",
        "Stock",
        body=WriteOffIn,
        org="none",
        status=201,
        roles="manager and above",
        responses=(409,),
    ),
    Route(
        "POST",
        "/stock/write-offs/expired",
        "call",
        "rpc/write_off_expired",
        "Write off every expired lot of a location or of the organization",
        "Stock",
        body=ExpiredWriteOffIn,
        org="arg",
        status=201,
        roles="manager and above",
    ),
    analytics("dashboard", "dashboard", "Dashboard figures"),
    analytics(
        "sales",
        "sales_analytics",
        "Sales over time",
        *SPAN,
        arg("granularity", "granularity", enum=("day", "week", "month")),
        arg("group_by", "group_by", enum=("none", "product", "category", "location")),
    ),
    analytics("inventory-turnover", "inventory_turnover", "Inventory turnover", *SPAN),
    analytics(
        "demand-forecast",
        "demand_forecast",
        "Demand forecast",
        arg("product", "product_id", "uuid"),
        arg("horizon_days", "horizon_days", "integer", minimum=1, maximum=365),
    ),
    analytics("reorder-suggestions", "reorder_suggestions", "What to reorder, how much", *REORDER),
    Route(
        "GET",
        "/replenishment/suggestions",
        "read",
        "rpc/reorder_suggestions",
        "What to reorder, how much, per supplier and location",
        "Replenishment",
        query=REORDER,
        org="arg",
    ),
    Route(
        "POST",
        "/replenishment/orders",
        "call",
        "rpc/create_replenishment_orders",
        "Turn the reorder suggestions into draft purchase orders",
        "Replenishment",
        org="arg",
        args=replenishment_args,
        status=201,
        roles="manager and above",
    ),
    analytics(
        "valuation",
        "stock_valuation",
        "Stock valuation",
        arg("method", "method", enum=("weighted_average", "fifo")),
    ),
    Route(
        "GET",
        "/settings",
        "get",
        "settings",
        "The organization's settings",
        "Settings",
        org="resolve",
        key="organization_id",
    ),
    Route(
        "PUT",
        "/settings",
        "replace",
        "settings",
        "Replace the organization's settings",
        "Settings",
        org="resolve",
        key="organization_id",
        body=SettingsIn,
        payload=lambda body: {"value": body.model_dump(mode="json", exclude_none=True)},
        roles="admin and owner",
    ),
]
