"""Security definer functions: each one is listed here with its reason; RLS decides the rest.

Exposed functions are `security invoker` unless a write must pass RLS (DESIGN.md section 5): the
readers (lookup_product, low_stock_products, expiring_soon) and bulk_upsert_products run as the
caller, so the table grants and policies decide what they see and write. Those that stay definer
write tables no client may write (the ledger, stock levels, lots, orders, counts, idempotency keys)
or the first membership, or read materialized views in private, which RLS does not cover and
clients cannot select. A new definer function in an exposed schema fails here until it is listed
with its reason, and a listed one that becomes invoker (or goes) fails until it leaves the list.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter

import psycopg

from tests.conftest import ROOT

# The schemas PostgREST serves (supabase/config.toml [api] schemas; deploy/compose.yaml and the
# local stack's PostgREST config name the same). public is always one.
EXPOSED_SCHEMAS = sorted(
    {"public"}
    | set(tomllib.loads((ROOT / "supabase" / "config.toml").read_text())["api"]["schemas"])
)

LEDGER = "clients may not write the ledger"
# Every security definer function in an exposed schema, with why RLS cannot decide for it.
EXPOSED_DEFINER = {
    "public.create_organization": "writes the first (owner) membership, which RLS reserves to the"
    " organization's admins",
    "public.set_lot_status": "writes public.lots, which clients may not write",
    "public.open_stock_count": "writes public.stock_counts, which clients may not write",
    "public.record_stock_count": "writes public.stock_count_lines, which clients may not write",
    "public.cancel_stock_count": "writes public.stock_counts, which clients may not write",
    "public.post_stock_count": f"{LEDGER} (stock_movements, stock_levels) nor the count",
    "public.create_order": "writes orders, order_items, idempotency_keys and reservations in"
    " stock_levels, which clients may not write",
    "public.create_replenishment_orders": "writes orders, order_items and idempotency_keys (through"
    " create_order), which clients may not write, from the suggestions' materialized view",
    "public.update_draft_order": "writes orders and order_items, which clients may not write",
    "public.update_order_status": "writes orders, reservations and (fulfil, receive) the ledger,"
    " which clients may not write",
    "public.fulfil_order": f"{LEDGER}, stock_levels nor orders",
    "public.receive_order": f"{LEDGER}, stock_levels, lots nor orders",
    "public.close_order": "writes orders and releases reservations in stock_levels, which clients"
    " may not write",
    "public.return_order": f"{LEDGER}, stock_levels nor order_items",
    "public.adjust_stock": f"{LEDGER} (stock_movements, stock_levels, lots)",
    "public.transfer_stock": f"{LEDGER} (stock_movements, stock_levels, lots)",
    "public.write_off_stock": f"{LEDGER} (stock_movements, stock_levels, lots)",
    "public.write_off_expired": f"{LEDGER} (stock_movements, stock_levels, lots)",
    "public.members": "reads the members' e-mail addresses in auth.users, which clients cannot"
    " read; only for an organization the caller belongs to",
    "public.invite_member": "reads auth.users (and, locally, creates the invited user there),"
    " which clients cannot access; it checks the caller's role first",
    "public.remove_member": "a member may remove their own membership, which RLS reserves to"
    " admins; private.guard_member_change checks every rule first",
    "public.custom_access_token_hook": "Supabase Auth runs it as supabase_auth_admin, which has no"
    " access to memberships; no PostgREST role may execute it; answers only for the event's user",
    # sql/functions/analytics (owned by the analytics change): they read materialized views in
    # private, which RLS does not cover and clients cannot select, filtered to the caller's
    # active organization (private.active_organization).
    "public.dashboard": "reads private.organization_summary (materialized view)",
    "public.sales_analytics": "reads private.daily_sales and its rollups (materialized views)",
    "public.inventory_turnover": "reads private.daily_stock_changes and daily_sales"
    " (materialized views)",
    "public.demand_forecast": "reads private.daily_sales (materialized views)",
    "public.reorder_suggestions": "reads private.reorder_inputs (materialized view)",
    "public.stock_valuation": "reads private.product_stock, stock_by_group (materialized views)"
    " and the cost facts",
    "public.refresh_analytics": "refreshing a materialized view needs its owner; it checks the"
    " caller's role first",
}
# The definer functions in private (not exposed): the membership lookups RLS policies call and
# trigger functions that write what clients may not. STYLE.md rule 3. private.active_organization
# is invoker: it reads only the caller's own memberships, which RLS lets every user read.
MEMBERSHIPS = (
    "RLS policies call it and it reads public.memberships, whose own policies call it: as the"
    " caller it would recurse; it only answers about auth.uid()"
)
PRIVATE_DEFINER = {
    "private.member_organizations": MEMBERSHIPS,
    "private.role_organizations": MEMBERSHIPS,
    # Single-organization forms of the two above, for function bodies (definer ones included).
    "private.is_member": "the one-organization form of member_organizations, same reason",
    "private.has_role": "the one-organization form of role_organizations, same reason",
    "private.audit_row": "trigger: writes public.audit_log, which clients may not write",
    "private.guard_ledger": "trigger: its organization check must see the row whatever the"
    " caller's RLS",
    "private.order_status_event": "trigger: writes notifications, which clients may not write",
    "private.low_stock_event": "trigger: writes notifications and private.low_stock_states",
    "private.lot_expiring_event": "trigger: writes notifications and lots",
    "private.keep_an_owner": "trigger: counts every owner of the organization, also after the"
    " caller removed its own membership (RLS would then hide the rest)",
}


def _definers(conn: psycopg.Connection, schemas: list[str]) -> Counter[str]:
    """schema.name of every security definer function in `schemas` (overloads counted)."""
    rows = conn.execute(
        "select n.nspname || '.' || p.proname from pg_proc as p"
        " join pg_namespace as n on n.oid = p.pronamespace"
        " where p.prosecdef and n.nspname = any(%s)",
        (schemas,),
    ).fetchall()
    return Counter(name for (name,) in rows)


def _check(found: Counter[str], listed: dict[str, str]) -> None:
    """found is exactly the listed set, one function per name, each with a reason."""
    assert sorted(set(found) - set(listed)) == [], "definer functions without a listed reason"
    assert sorted(set(listed) - set(found)) == [], "listed but no longer security definer"
    assert [name for name, n in found.items() if n > 1] == [], "definer overloads"
    assert [name for name, why in listed.items() if not why.strip()] == []


def test_every_definer_function_in_an_exposed_schema_is_listed(conn) -> None:
    """A security definer function in a schema PostgREST serves is exactly one listed above."""
    _check(_definers(conn, EXPOSED_SCHEMAS), EXPOSED_DEFINER)


def test_private_definer_functions_are_the_reviewed_helpers(conn) -> None:
    """In private, only the membership lookups and the writing trigger functions are definer."""
    _check(_definers(conn, ["private"]), PRIVATE_DEFINER)


# Run as the caller, RLS deciding: the readers, the catalog import and the active-organization
# lookup they share.
INVOKER = [
    "public.lookup_product",
    "public.low_stock_products",
    "public.expiring_soon",
    "public.bulk_upsert_products",
    "private.active_organization",
]


def test_rls_decided_functions_run_as_the_caller(conn) -> None:
    """The readers, the catalog import and active_organization are invoker: RLS decides."""
    rows = conn.execute(
        "select n.nspname || '.' || p.proname, p.prosecdef from pg_proc as p"
        " join pg_namespace as n on n.oid = p.pronamespace"
        " where n.nspname || '.' || p.proname = any(%s)",
        (INVOKER,),
    ).fetchall()
    assert sorted(name for name, _ in rows) == sorted(INVOKER)
    assert [name for name, definer in rows if definer] == []


def test_every_definer_function_says_why_in_its_comment(conn) -> None:
    """Each definer function's COMMENT gives its reason (names 'security definer')."""
    rows = conn.execute(
        "select p.oid::regprocedure::text, coalesce(obj_description(p.oid, 'pg_proc'), '')"
        " from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace"
        " where p.prosecdef and n.nspname = any(%s)",
        ([*EXPOSED_SCHEMAS, "private"],),
    ).fetchall()
    pattern = re.compile(r"security\s+definer", re.IGNORECASE)
    assert [name for name, comment in rows if not pattern.search(comment)] == []


def test_views_in_exposed_schemas_run_as_the_caller(conn) -> None:
    """A view there is security_invoker: otherwise it reads with its owner's rights, past RLS."""
    rows = conn.execute(
        "select c.oid::regclass::text from pg_class as c"
        " join pg_namespace as n on n.oid = c.relnamespace"
        " where c.relkind = 'v' and n.nspname = any(%s)"
        " and not coalesce('security_invoker=true' = any(c.reloptions)"
        " or 'security_invoker=on' = any(c.reloptions), false)",
        (EXPOSED_SCHEMAS,),
    ).fetchall()
    assert rows == []
