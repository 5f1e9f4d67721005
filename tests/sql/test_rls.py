"""Row level security: the role x operation x table matrix, cross-tenant attempts, anon."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.db import as_role
from tests.support.domain import RANK, ROLES, World, claims, error_of, items

ALL_TABLES = (
    "organizations",
    "memberships",
    "locations",
    "categories",
    "suppliers",
    "products",
    "stock_levels",
    "lots",
    "orders",
    "order_items",
    "stock_movements",
    "idempotency_keys",
    "settings",
    "notifications",
    "notification_reads",
    "audit_log",
    "stock_counts",
    "stock_count_lines",
)
CATALOG_INSERT = {
    "locations": "insert into public.locations (organization_id, name, code, kind)"
    " values (%s, 'New', 'NEWLOC', 'store')",
    "categories": "insert into public.categories (organization_id, name) values (%s, 'New')",
    "suppliers": "insert into public.suppliers (organization_id, name) values (%s, 'New')",
    "products": "insert into public.products (organization_id, sku, name)"
    " values (%s, 'NEW-SKU', 'New')",
}
READ_ONLY = (
    "stock_levels",
    "lots",
    "orders",
    "order_items",
    "stock_movements",
    "idempotency_keys",
    "notifications",
    "audit_log",
    "stock_counts",
    "stock_count_lines",
)
ORG_SCOPED_READ = (
    "locations",
    "categories",
    "suppliers",
    "products",
    "stock_levels",
    "lots",
    "orders",
    "order_items",
    "stock_movements",
    "settings",
    "notifications",
    "memberships",
)


def attempt(conn: psycopg.Connection, query: str, params=()) -> int | str:
    """Run one statement in a savepoint: its row count, or the SQLSTATE it failed with."""
    try:
        with conn.transaction():
            return conn.execute(query, params).rowcount
    except psycopg.Error as exc:
        return exc.sqlstate


def user(world: World, role: str, org: str = "a") -> dict:
    """Claims of the user with `role` in organization a (or b)."""
    return claims(getattr(world, org).users[role])


@pytest.mark.parametrize("table", sorted(CATALOG_INSERT))
@pytest.mark.parametrize("role", ROLES)
def test_catalog_write_matrix(conn, world: World, role: str, table: str) -> None:
    """Managers and above insert, update and delete catalog rows; staff and viewers cannot."""
    allowed = RANK[role] >= RANK["manager"]
    spare = world.a.spare[table]
    with as_role(conn, "authenticated", user(world, role)):
        assert attempt(conn, CATALOG_INSERT[table], (world.a.id,)) == (1 if allowed else "42501")
        updated = attempt(
            conn, f"update public.{table} set name = name || '!' where id = %s", (spare,)
        )
        assert updated == (1 if allowed else 0)
        assert attempt(conn, f"delete from public.{table} where id = %s", (spare,)) == (
            1 if allowed else 0
        )


@pytest.mark.parametrize("table", ORG_SCOPED_READ)
@pytest.mark.parametrize("role", ROLES)
def test_members_read_only_their_organization(conn, world: World, role: str, table: str) -> None:
    """Every role reads its organization's rows and none of the other organization's."""
    with as_role(conn, "authenticated", user(world, role)):
        mine = conn.execute(
            f"select count(*) from public.{table} where organization_id = %s", (world.a.id,)
        ).fetchone()[0]
        theirs = conn.execute(
            f"select count(*) from public.{table} where organization_id = %s", (world.b.id,)
        ).fetchone()[0]
    assert mine > 0
    assert theirs == 0


@pytest.mark.parametrize("table", READ_ONLY)
@pytest.mark.parametrize("role", ROLES)
def test_stock_order_and_log_tables_refuse_client_writes(
    conn, world: World, role: str, table: str
) -> None:
    """No role writes stock, orders, ledger, keys, notifications or audit rows directly."""
    with as_role(conn, "authenticated", user(world, role)):
        assert attempt(conn, f"update public.{table} set organization_id = organization_id") == (
            "42501"
        )
        assert attempt(conn, f"delete from public.{table}") == "42501"
        assert (
            attempt(
                conn, f"insert into public.{table} (organization_id) values (%s)", (world.a.id,)
            )
            == "42501"
        )


@pytest.mark.parametrize("role", ROLES)
def test_audit_log_is_read_by_admins_only(conn, world: World, role: str) -> None:
    """Admins and owners read their organization's audit trail; lower roles see nothing."""
    with as_role(conn, "authenticated", user(world, role)):
        seen = conn.execute("select count(*) from public.audit_log").fetchone()[0]
        other = conn.execute(
            "select count(*) from public.audit_log where organization_id = %s", (world.b.id,)
        ).fetchone()[0]
    assert (seen > 0) == (RANK[role] >= RANK["admin"])
    assert other == 0


@pytest.mark.parametrize("role", ROLES)
def test_settings_are_managed_by_admins(conn, world: World, role: str) -> None:
    """Admins and owners update settings; members below only read them."""
    with as_role(conn, "authenticated", user(world, role)):
        assert conn.execute("select count(*) from public.settings").fetchone()[0] == 1
        changed = attempt(
            conn,
            'update public.settings set value = \'{"currency": "EUR"}\' where organization_id = %s',
            (world.a.id,),
        )
        inserted = attempt(
            conn, "insert into public.settings (organization_id) values (%s)", (world.a.id,)
        )
    allowed = RANK[role] >= RANK["admin"]
    assert changed == (1 if allowed else 0)
    # The row exists: an admin passes RLS and hits the primary key, the others are refused.
    assert inserted == ("23505" if allowed else "42501")


@pytest.mark.parametrize("role", ROLES)
def test_organization_update_and_delete_by_role(conn, world: World, role: str) -> None:
    """Admins rename the organization, only owners delete it, nobody inserts one directly."""
    with as_role(conn, "authenticated", user(world, role)):
        renamed = attempt(
            conn, "update public.organizations set name = 'Renamed' where id = %s", (world.a.id,)
        )
        direct = attempt(
            conn, "insert into public.organizations (name, slug) values ('X', 'x-direct')"
        )
        deleted = attempt(conn, "delete from public.organizations where id = %s", (world.a.id,))
    assert renamed == (1 if RANK[role] >= RANK["admin"] else 0)
    assert direct == "42501"
    assert deleted == (1 if role == "owner" else 0)


@pytest.mark.parametrize("role", ROLES)
def test_membership_management_matrix(conn, world: World, role: str) -> None:
    """Admins add members and change roles; only owners grant or touch the owner role."""
    newcomer = conn.execute(
        "insert into auth.users (email) values (null) returning id::text"
    ).fetchone()[0]
    conn.commit()
    staff_member = world.a.users["staff"]
    with as_role(conn, "authenticated", user(world, role)):
        add_staff = attempt(
            conn,
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'staff')",
            (newcomer, world.a.id),
        )
        # Grant owner before touching the owner row: that last step may demote the caller.
        demote = attempt(
            conn,
            "update public.memberships set role = 'viewer' where user_id = %s"
            " and organization_id = %s",
            (staff_member, world.a.id),
        )
        grant_owner = attempt(
            conn,
            "update public.memberships set role = 'owner' where user_id = %s"
            " and organization_id = %s",
            (staff_member, world.a.id),
        )
        touch_owner = attempt(
            conn,
            "update public.memberships set role = 'admin' where user_id = %s"
            " and organization_id = %s",
            (world.a.users["owner"], world.a.id),
        )
    admin = RANK[role] >= RANK["admin"]
    assert add_staff == (1 if admin else "42501")
    assert demote == (1 if admin else 0)
    assert touch_owner == (1 if role == "owner" else 0)
    assert grant_owner == (1 if role == "owner" else ("42501" if admin else 0))


def test_user_reads_own_memberships_and_co_members_only(conn, world: World) -> None:
    """A viewer sees the five memberships of its organization and none of the other one."""
    with as_role(conn, "authenticated", user(world, "viewer")):
        rows = conn.execute("select organization_id::text from public.memberships").fetchall()
    assert {r[0] for r in rows} == {world.a.id}
    assert len(rows) == 5


def test_outsider_sees_nothing(conn, world: World) -> None:
    """A signed-in user with no membership reads no row of any table."""
    with as_role(conn, "authenticated", claims(world.outsider)):
        for table in ALL_TABLES:
            count = conn.execute(f"select count(*) from public.{table}").fetchone()[0]
            assert count == 0, table


@pytest.mark.parametrize("table", ALL_TABLES)
def test_anon_sees_nothing(conn, table: str) -> None:
    """anon has no privilege on any inventory table."""
    with as_role(conn, "anon"):
        assert attempt(conn, f"select count(*) from public.{table}") == "42501"


def test_anon_cannot_call_domain_functions(conn, world: World) -> None:
    """anon may not execute the write RPCs."""
    with as_role(conn, "anon"):
        assert (
            attempt(
                conn,
                "select public.create_order('sales', %s, %s)",
                (world.a.locations["WH1"], items((world.a.products["P1"], 1))),
            )
            == "42501"
        )
        assert attempt(conn, "select public.create_organization('x', 'anon-org')") == "42501"


def test_notification_reads_are_per_user(conn, world: World) -> None:
    """Users mark their own organization's notifications read, never another's or for others."""
    mine = conn.execute(
        "select id from public.notifications where organization_id = %s limit 1", (world.a.id,)
    ).fetchone()[0]
    theirs = conn.execute(
        "select id from public.notifications where organization_id = %s limit 1", (world.b.id,)
    ).fetchone()[0]
    viewer = world.a.users["viewer"]
    with as_role(conn, "authenticated", user(world, "viewer")):
        sql = "insert into public.notification_reads (user_id, notification_id) values (%s, %s)"
        assert attempt(conn, sql, (viewer, mine)) == 1
        assert attempt(conn, sql, (viewer, theirs)) == "42501"
        assert attempt(conn, sql, (world.a.users["staff"], mine)) == "42501"
        assert conn.execute("select count(*) from public.notification_reads").fetchone()[0] == 1


def test_cross_tenant_writes_are_denied(conn, world: World) -> None:
    """Inserting with another organization's id or moving a row there is refused."""
    with as_role(conn, "authenticated", user(world, "owner")):
        assert attempt(conn, CATALOG_INSERT["products"], (world.b.id,)) == "42501"
        moved = attempt(
            conn,
            "update public.products set organization_id = %s where id = %s",
            (world.b.id, world.a.spare["products"]),
        )
        assert moved == "42501"
        assert (
            attempt(
                conn,
                "update public.products set name = 'x' where id = %s",
                (world.b.products["P1"],),
            )
            == 0
        )


def test_cross_tenant_functions_are_denied(conn, world: World) -> None:
    """Ordering, adjusting, transferring or moving another organization's things fails; nothing
    is written."""
    b_product = world.b.products["P1"]
    cases = [
        (
            "select public.create_order('sales', %s, %s)",
            (world.a.locations["WH1"], items((b_product, 1))),
            ("PT404", "not_found"),
        ),
        (
            "select public.create_order('sales', %s, %s, organization_id => %s)",
            (world.b.locations["WH1"], items((b_product, 1)), world.b.id),
            ("PT403", "forbidden"),
        ),
        (
            "select public.adjust_stock(%s, %s, 5, 'theft')",
            (b_product, world.b.locations["WH1"]),
            ("PT404", "not_found"),
        ),
        (
            "select public.adjust_stock(%s, %s, 5, 'mixup')",
            (world.a.products["P1"], world.b.locations["WH1"]),
            ("PT404", "not_found"),
        ),
        (
            "select public.transfer_stock(%s, %s, %s, 1)",
            (world.a.products["P1"], world.a.locations["WH1"], world.b.locations["WH1"]),
            ("PT404", "not_found"),
        ),
        (
            "select public.update_order_status(%s, 'cancelled')",
            (world.b.spare["orders"],),
            ("PT404", "not_found"),
        ),
    ]
    before = conn.execute(
        "select (select count(*) from public.orders), (select count(*) from public.stock_movements)"
    ).fetchone()
    with as_role(conn, "authenticated", user(world, "owner")):
        for query, params, expected in cases:
            try:
                with conn.transaction():
                    conn.execute(query, params)
            except psycopg.Error as exc:
                assert error_of(exc) == expected, query
            else:
                pytest.fail(f"not refused: {query}")
        found = conn.execute(
            "select count(*) from public.lookup_product(%s)", (f"{world.b.slug}-P1",)
        ).fetchone()[0]
        assert found == 0
    after = conn.execute(
        "select (select count(*) from public.orders), (select count(*) from public.stock_movements)"
    ).fetchone()
    assert after == before


@pytest.mark.parametrize(
    ("role", "kind", "expected"),
    [
        ("viewer", "sales", "PT403"),
        ("staff", "sales", None),
        ("staff", "purchase", "PT403"),
        ("manager", "purchase", None),
    ],
)
def test_order_creation_by_role(conn, world: World, role: str, kind: str, expected) -> None:
    """Viewers create no orders, staff create sales orders, managers purchase orders too."""
    with as_role(conn, "authenticated", user(world, role)):
        outcome = attempt(
            conn,
            "select public.create_order(%s, %s, %s)",
            (kind, world.a.locations["WH1"], items((world.a.products["P1"], 1))),
        )
    assert outcome == (1 if expected is None else expected)


@pytest.mark.parametrize("role", ROLES)
def test_stock_adjustment_by_role(conn, world: World, role: str) -> None:
    """Staff and above record adjustments and transfers; viewers cannot."""
    p1, wh, st = world.a.products["P1"], world.a.locations["WH1"], world.a.locations["ST1"]
    with as_role(conn, "authenticated", user(world, role)):
        adjusted = attempt(conn, "select public.adjust_stock(%s, %s, -1, 'damaged')", (p1, wh))
        moved = attempt(conn, "select public.transfer_stock(%s, %s, %s, 1)", (p1, wh, st))
    expected = 1 if RANK[role] >= RANK["staff"] else "PT403"
    assert (adjusted, moved) == (expected, expected)
