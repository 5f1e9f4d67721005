"""RLS plans: membership sets are InitPlans computed once per statement, never per-row SubPlans.

A policy written as `(select private.is_member(organization_id))` passes the row's column to the
helper, so the scalar subquery is correlated and runs once per row (a security definer call and a
memberships lookup each), and no index on organization_id can serve it. The policies compare
`organization_id = any(array(select private.member_organizations()))` instead (or
private.role_organizations(min_role) for role-gated writes): one InitPlan per statement, whose
result is an index condition. These tests read EXPLAIN (format json) as a member would.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.db import as_role
from tests.support.domain import ROLES, World, claims

# Tables with an organization-scoped read policy, and the role that may read each one.
READ_AS = {
    "products": "viewer",
    "organizations": "viewer",
    "memberships": "viewer",
    "locations": "viewer",
    "categories": "viewer",
    "suppliers": "viewer",
    "stock_levels": "viewer",
    "lots": "viewer",
    "orders": "viewer",
    "order_items": "viewer",
    "stock_movements": "viewer",
    "idempotency_keys": "staff",
    "settings": "viewer",
    "notifications": "viewer",
    "audit_log": "admin",
    "stock_counts": "viewer",
    "stock_count_lines": "viewer",
}
# Role-gated writes: (statement, role allowed to run it).
WRITES = {
    "update products": ("update public.products set name = name", "manager"),
    "delete suppliers": ("delete from public.suppliers where name = 'none'", "manager"),
    "update settings": ("update public.settings set organization_id = organization_id", "admin"),
    "update memberships": ("update public.memberships set role = role", "admin"),
    "delete organizations": ("delete from public.organizations where slug = 'none'", "owner"),
}


def nodes(plan: dict) -> Iterator[dict]:
    """Every node of an EXPLAIN (format json) plan tree, depth first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def explain(conn: psycopg.Connection, query: str, params=()) -> list[dict]:
    """The nodes of the plan PostgreSQL chooses for `query` (not executed)."""
    row = conn.execute(f"explain (format json, costs off) {query}", params).fetchone()
    return list(nodes(row[0][0]["Plan"]))


def relationships(plan: list[dict]) -> set[str]:
    """The Parent Relationship of every node: Outer, Inner, InitPlan, SubPlan, ..."""
    return {node.get("Parent Relationship", "") for node in plan}


def as_user(conn: psycopg.Connection, world: World, role: str):
    """Act as the user with `role` in organization a, the way PostgREST does."""
    return as_role(conn, "authenticated", claims(world.a.users[role]))


def test_no_policy_passes_a_row_column_to_a_membership_helper(conn) -> None:
    """No policy calls is_member/has_role (per-row by construction); sets are compared instead."""
    rows = conn.execute(
        "select tablename, policyname from pg_policies where schemaname = 'public'"
        " and concat(qual, ' ', with_check) ~ 'private\\.(is_member|has_role)\\('"
    ).fetchall()
    assert rows == []


@pytest.mark.parametrize("table", sorted(READ_AS))
def test_read_policy_is_an_initplan_not_a_per_row_subplan(conn, world: World, table: str) -> None:
    """A member's count(*) computes the membership set once (InitPlan), never per row."""
    with as_user(conn, world, READ_AS[table]):
        plan = explain(conn, f"select count(*) from public.{table}")
    assert "SubPlan" not in relationships(plan)
    assert "InitPlan" in relationships(plan)
    assert not [n for n in plan if "SubPlan" in n.get("Filter", "")]


@pytest.mark.parametrize("name", sorted(WRITES))
def test_write_policy_is_an_initplan_not_a_per_row_subplan(conn, world: World, name: str) -> None:
    """Role-gated updates and deletes compute the role's organization set once per statement."""
    query, role = WRITES[name]
    with as_user(conn, world, role):
        plan = explain(conn, query)
    assert "SubPlan" not in relationships(plan)
    assert "InitPlan" in relationships(plan)


def test_products_count_is_driven_by_the_organization_index(conn, world: World) -> None:
    """Without a seq scan, the membership set is an Index Cond on organization_id, not a Filter."""
    with as_user(conn, world, "viewer"):
        conn.execute("set local enable_seqscan = off")
        plan = explain(conn, "select count(*) from public.products")
    conds = [n.get("Index Cond", "") for n in plan]
    assert any("organization_id = ANY" in c for c in conds), conds


def test_filtered_read_uses_an_organization_index(conn, world: World) -> None:
    """A lookup by sku uses (organization_id, sku) with both columns as index conditions."""
    with as_user(conn, world, "viewer"):
        conn.execute("set local enable_seqscan = off")
        plan = explain(conn, "select id from public.products where sku = %s", ("a-P1",))
        found = conn.execute("select count(*) from public.products where sku = 'a-P1'").fetchone()
    scans = [n for n in plan if "organization_id = ANY" in n.get("Index Cond", "")]
    assert scans, plan
    assert "sku" in scans[0]["Index Cond"]
    assert found == (1,)


@pytest.mark.parametrize("role", ROLES)
def test_role_organizations_lists_organizations_where_the_role_suffices(
    conn, world: World, role: str
) -> None:
    """role_organizations(min_role) is organization a exactly when role >= min_role."""
    with as_user(conn, world, role):
        got = {
            min_role: [
                str(r[0])
                for r in conn.execute(
                    "select private.role_organizations(%s)", (min_role,)
                ).fetchall()
            ]
            for min_role in (*ROLES, "nobody")
        }
    want = {
        min_role: [world.a.id] if ROLES.index(role) <= ROLES.index(min_role) else []
        for min_role in ROLES
    }
    assert got == {**want, "nobody": []}
