"""Which tables a cached response depends on, and which tables a write may change.

A cached entry is valid only while the generations of the tables it read are unchanged. Reads
of a table depend on that table plus the tables embedded through `select`; RPC reads and writes
depend on the tables the function reads or writes, declared here (a test checks that every
function PostgREST exposes is declared). Everything depends on `memberships`, which every RLS
policy reads: a member removed from an organization loses its cached view of it at once."""

from __future__ import annotations

import functools
import re

ALL = "*"  # bumped with every change: depending on it means "any write invalidates me"

TABLES = frozenset(
    {
        "organizations",
        "memberships",
        "locations",
        "categories",
        "suppliers",
        "products",
        "stock_levels",
        "lots",
        "stock_movements",
        "orders",
        "order_items",
        "idempotency_keys",
        "settings",
        "notifications",
        "notification_reads",
        "audit_log",
    }
)
ALWAYS = frozenset({"memberships"})
# Tables that triggers write on every write of another table.
SIDE_EFFECTS = frozenset({"audit_log", "notifications"})
STOCK = frozenset({"stock_levels", "lots", "stock_movements"})
ORDERS = frozenset({"orders", "order_items", "idempotency_keys"})
CATALOG = frozenset({"products", "categories", "suppliers", "locations", "settings"})
# Not a table: the materialized views analytics read; refreshing them notifies this name.
VIEWS = frozenset({"analytics_views"})

# RPC name -> tables it reads (for GET caching) or writes (for invalidation on POST).
RPC: dict[str, frozenset[str]] = {
    "create_order": ORDERS | STOCK | SIDE_EFFECTS,
    "update_order_status": ORDERS | STOCK | SIDE_EFFECTS,
    "update_draft_order": ORDERS | SIDE_EFFECTS,
    "adjust_stock": STOCK | SIDE_EFFECTS,
    "transfer_stock": STOCK | SIDE_EFFECTS,
    "bulk_upsert_products": frozenset({"products"}) | SIDE_EFFECTS,
    "lookup_product": frozenset({"products"}),
    "low_stock_products": STOCK | CATALOG,
    "expiring_soon": STOCK | CATALOG,
    "create_organization": frozenset({"organizations", "memberships", "settings"}) | SIDE_EFFECTS,
    "dashboard": STOCK | ORDERS | CATALOG | VIEWS,
    "sales_analytics": ORDERS | STOCK | CATALOG | VIEWS,
    "inventory_turnover": ORDERS | STOCK | CATALOG | VIEWS,
    "demand_forecast": ORDERS | STOCK | CATALOG | VIEWS,
    "reorder_suggestions": ORDERS | STOCK | CATALOG | VIEWS,
    "stock_valuation": STOCK | CATALOG | VIEWS,
    "refresh_analytics": frozenset({ALL}),
}

# Writes to these may cascade into many tables (foreign keys with on delete cascade).
CASCADES = frozenset({"organizations", "orders", "notifications"})
# An embedded resource in a select: optional spread, optional alias, name, optional hints, "(".
EMBED = re.compile(r'(?:\.\.\.)?(?:[\w$]+:)?"?([\w$]+)"?(?:![\w$]+)*\s*\(')


def embedded(select: str) -> set[str]:
    """Names of the resources embedded in a PostgREST `select` (nested ones included)."""
    return set(EMBED.findall(select))


@functools.lru_cache(maxsize=4096)
def read_dependencies(resource: str, select: str | None) -> frozenset[str]:
    """Tables a GET of /resource?select=... depends on; ALL when something is not known."""
    if resource.startswith("rpc/"):
        declared = RPC.get(resource[4:])
        if not declared:
            return frozenset({ALL})
        embeds = embedded(select) if select else set()
        if not embeds <= TABLES:
            return frozenset({ALL})
        # A function returning table rows may embed related tables too.
        return declared | embeds | ALWAYS
    names = {resource}
    if select:
        names |= embedded(select)
    if not names <= TABLES:
        # A view, an FK-column embed or a hint we cannot resolve: depend on every change.
        return frozenset({ALL})
    return frozenset(names) | ALWAYS


@functools.lru_cache(maxsize=4096)
def read_order(resource: str, select: str | None) -> tuple[str, ...]:
    """read_dependencies, sorted: the order an entry's generation vector lists them in."""
    return tuple(sorted(read_dependencies(resource, select)))


def write_targets(resource: str) -> frozenset[str]:
    """Tables a write to /resource may change (over-approximated: that is safe)."""
    if resource.startswith("rpc/"):
        return RPC.get(resource[4:], frozenset({ALL}))
    if resource in CASCADES:
        return frozenset({ALL})  # deleting an organization or an order cascades
    if resource in TABLES:
        return frozenset({resource}) | SIDE_EFFECTS
    return frozenset({ALL})
