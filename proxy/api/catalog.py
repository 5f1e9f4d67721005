"""Route map of the catalog: products, categories, suppliers, locations."""

from __future__ import annotations

from aiohttp import web

from proxy.api import postgrest
from proxy.api.catalog_models import (
    CategoryIn,
    CategoryPatch,
    LocationIn,
    LocationPatch,
    ProductIn,
    ProductPatch,
    SupplierIn,
    SupplierPatch,
)
from proxy.api.params import Query, arg, eq, search
from proxy.api.route import Route
from proxy.cache.dependencies import RPC
from proxy.gate.identity import Identity

MANAGERS = "read: any member; write: manager and above"
# Singular of each resource tag, for the routes' summaries ("Get one category").
SINGULAR = {"categories": "category"}
PRODUCT_LIST = "*,category:categories(id,name),supplier:suppliers(id,name)"
PRODUCT_ONE = (
    PRODUCT_LIST
    + ",stock:stock_levels(location_id,on_hand,reserved,location:locations(name,code))"
    + ",lots(id,location_id,lot_number,expiry_date,quantity)"
)


async def low_stock_ids(
    request: web.Request, identity: Identity, value: bool, org: str | None
) -> list[tuple[str, str]]:
    """`low_stock=true|false` -> an id filter from low_stock_products() (the SQL rule)."""
    params = [("select", "product_id")] + ([("organization_id", org)] if org else [])
    reply = await postgrest.call(request, identity, "GET", "rpc/low_stock_products", params=params)
    ids = ",".join(sorted({row["product_id"] for row in reply.json() or []}))
    return [("id", f"{'in' if value else 'not.in'}.({ids})")]


def crud(
    name: str,
    tag: str,
    *,
    create: type,
    patch: type,
    select: str = "*",
    one: str = "",
    query: tuple[Query, ...] = (),
    sort: tuple[str, ...] = ("name", "created_at", "updated_at"),
    delete: str = "delete",
) -> list[Route]:
    """The six routes of a catalog resource."""
    path, item = f"/{name}", f"/{name}/{{id}}"
    what = SINGULAR.get(tag.lower(), tag.lower().removesuffix("s"))
    gone = "Archives" if delete == "archive" else "Deletes (409 when still referenced)"
    return [
        Route(
            "GET",
            path,
            "list",
            name,
            f"List {tag.lower()}",
            tag,
            select=select,
            query=query,
            sort=sort,
            default_sort="name",
        ),
        Route("GET", item, "get", name, f"Get one {what}", tag, select=one or select),
        Route(
            "POST",
            path,
            "create",
            name,
            f"Create a {what}",
            tag,
            select=select,
            body=create,
            roles=MANAGERS,
            status=201,
        ),
        Route(
            "PUT",
            item,
            "replace",
            name,
            f"Replace a {what} (omitted fields reset)",
            tag,
            select=select,
            body=create,
            roles=MANAGERS,
        ),
        Route(
            "PATCH",
            item,
            "update",
            name,
            f"Change fields of a {what}",
            tag,
            select=select,
            body=patch,
            roles=MANAGERS,
        ),
        Route("DELETE", item, delete, name, f"{gone} a {what}", tag, select=select, roles=MANAGERS),
    ]


PRODUCT_QUERY = (
    search("search", "name", "sku", "barcode"),
    eq("category", "category_id", description="category id"),
    eq("supplier", "supplier_id", description="supplier id"),
    Query(
        "location",
        "uuid",
        "stock_levels.location_id",
        "eq",
        "stocked at this location id",
        embed="stock_levels!inner()",
    ),
    Query(
        "low_stock",
        "boolean",
        description="at or below the low-stock threshold somewhere",
        resolve=low_stock_ids,
        extra_deps=RPC["low_stock_products"],
    ),
    eq("active", "active", "boolean"),
    Query(
        "archived",
        "boolean",
        "archived_at",
        "set",
        "archived products (default false)",
        absent=(("archived_at", "is.null"),),
    ),
)

PRODUCT_EXTRAS = [
    Route(
        "GET",
        "/products/low-stock",
        "list",
        "rpc/low_stock_products",
        "Products at or below their low-stock threshold, per location",
        "Products",
        query=(arg("location", "location_id", "uuid"),),
        org="arg",
        sort=("available", "on_hand", "sku"),
        default_sort="available,sku",
    ),
    Route(
        "GET",
        "/products/expiring-soon",
        "list",
        "rpc/expiring_soon",
        "Lots expiring within `days` (default: setting expiry_warning_days)",
        "Products",
        query=(arg("days", "days", "integer", minimum=0, maximum=3650),),
        org="arg",
        sort=("expiry_date", "sku"),
        default_sort="expiry_date,sku",
    ),
    Route(
        "GET",
        "/products/lookup",
        "read",
        "rpc/lookup_product",
        "The product whose barcode or SKU equals `code` (404 when none)",
        "Products",
        query=(arg("code", "code", max_length=64, required=True),),
        org="arg",
        single=True,
    ),
]

ROUTES: list[Route] = [
    *PRODUCT_EXTRAS,
    *crud(
        "products",
        "Products",
        create=ProductIn,
        patch=ProductPatch,
        select=PRODUCT_LIST,
        one=PRODUCT_ONE,
        query=PRODUCT_QUERY,
        delete="archive",
        sort=("name", "sku", "price", "created_at", "updated_at"),
    ),
    *crud(
        "categories",
        "Categories",
        create=CategoryIn,
        patch=CategoryPatch,
        query=(search("search", "name"), eq("parent", "parent_id")),
    ),
    *crud(
        "suppliers",
        "Suppliers",
        create=SupplierIn,
        patch=SupplierPatch,
        query=(
            search("search", "name", "contact_name", "email"),
            eq("active", "active", "boolean"),
        ),
    ),
    *crud(
        "locations",
        "Locations",
        create=LocationIn,
        patch=LocationPatch,
        query=(
            search("search", "name", "code"),
            eq("kind", "kind", enum=("warehouse", "store")),
            eq("active", "active", "boolean"),
        ),
    ),
]
