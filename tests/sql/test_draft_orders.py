"""update_draft_order: roles, tenancy, the draft-only rule and replacing lines without stock."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.domain import World, acting, call, error_of, items

DRAFT = "select public.create_order(%s, %s, %s, status => 'draft', supplier_id => %s) ->> 'id'"
UPDATE = "select public.update_draft_order(%s, %s, %s, %s, %s, %s)"


def _supplier(conn, world: World) -> str:
    """A new supplier of organization a (committed; the world's spare one stays unreferenced)."""
    supplier = str(
        conn.execute(
            "insert into public.suppliers (organization_id, name) values (%s, 'Drafts')"
            " returning id",
            (world.a.id,),
        ).fetchone()[0]
    )
    conn.commit()
    return supplier


def _draft(
    conn, world: World, kind: str = "sales", role: str = "staff", supplier: str | None = None
) -> str:
    """A committed draft order of organization a (one unit of P1 at WH1)."""
    return call(
        conn,
        world.a.users[role],
        DRAFT,
        (kind, world.a.locations["WH1"], items((world.a.products["P1"], 1)), supplier),
    )[0][0]


def _refused(conn, uid: str, query: str, params) -> tuple[str | None, str | None]:
    """(SQLSTATE, hint) of the error a call as `uid` raises; nothing it did is kept."""
    with pytest.raises(psycopg.Error) as info, acting(conn, uid, commit=False):
        conn.execute(query, params)
    return error_of(info.value)


def _levels(conn, product: str) -> list[tuple]:
    """(location, on_hand, reserved) of a product, for checking that nothing moved."""
    return conn.execute(
        "select location_id::text, on_hand, reserved from public.stock_levels"
        " where product_id = %s order by location_id",
        (product,),
    ).fetchall()


def test_draft_lines_and_details_are_replaced_without_stock_changes(conn, world: World) -> None:
    """A draft's lines, location and notes are replaced in full; no stock is reserved or moved."""
    a = world.a
    order = _draft(conn, world)
    before = {p: _levels(conn, a.products[p]) for p in ("P1", "P2", "P3")}
    lines = Jsonb(
        [
            {"product_id": a.products["P2"], "quantity": 3},
            {"product_id": a.products["P3"], "quantity": 2, "unit_price": "4.25"},
        ]
    )
    (result,) = call(
        conn,
        a.users["staff"],
        UPDATE,
        (order, a.locations["ST1"], lines, None, "Ada", "call first"),
    )[0]
    assert result["id"] == order and result["status"] == "draft"
    assert result["location_id"] == a.locations["ST1"]
    assert (result["customer_name"], result["notes"]) == ("Ada", "call first")
    got = [(i["line_no"], i["product_id"], float(i["quantity"])) for i in result["items"]]
    assert got == [(1, a.products["P2"], 3.0), (2, a.products["P3"], 2.0)]
    assert float(result["items"][0]["unit_price"]) == 10  # the product price by default
    assert float(result["items"][1]["unit_price"]) == 4.25
    assert conn.execute(
        "select count(*) from public.order_items where order_id = %s", (order,)
    ).fetchone() == (2,)
    assert {p: _levels(conn, a.products[p]) for p in ("P1", "P2", "P3")} == before
    # An omitted field is cleared (PUT semantics).
    (again,) = call(
        conn, a.users["staff"], UPDATE, (order, a.locations["WH1"], lines, None, None, None)
    )[0]
    assert (again["customer_name"], again["notes"]) == (None, None)
    # The edited draft confirms like any other: only then is stock reserved.
    call(conn, a.users["staff"], "select public.update_order_status(%s, 'confirmed')", (order,))
    assert (
        conn.execute(
            "select reserved from public.stock_levels where product_id = %s and location_id = %s",
            (a.products["P2"], a.locations["WH1"]),
        ).fetchone()[0]
        >= 3
    )


def test_purchase_draft_needs_a_manager_and_keeps_its_supplier(conn, world: World) -> None:
    """Staff may not edit a purchase draft (403); a manager may, supplier and cost price kept."""
    a = world.a
    supplier = _supplier(conn, world)
    order = _draft(conn, world, "purchase", "manager", supplier)
    params = (order, a.locations["WH1"], items((a.products["P3"], 7)), supplier)
    assert _refused(conn, a.users["staff"], UPDATE, (*params, None, None)) == ("PT403", "forbidden")
    (result,) = call(conn, a.users["manager"], UPDATE, (*params, None, "PO note"))[0]
    assert result["supplier_id"] == supplier and result["notes"] == "PO note"
    assert float(result["items"][0]["unit_price"]) == 5  # unit cost for purchases
    # A customer name belongs to sales orders only.
    err = _refused(conn, a.users["manager"], UPDATE, (*params, "Ada", None))
    assert err == ("PT422", "validation_failed")


def test_roles_below_staff_and_anon_cannot_edit(conn, world: World) -> None:
    """A viewer gets 403 forbidden; anon has no EXECUTE at all."""
    a = world.a
    order = _draft(conn, world)
    params = (order, a.locations["WH1"], items((a.products["P2"], 1)), None, None, None)
    assert _refused(conn, a.users["viewer"], UPDATE, params) == ("PT403", "forbidden")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction(force_rollback=True):
        conn.execute("set local role anon")
        conn.execute(UPDATE, params)


def test_other_tenants_orders_and_ids_are_not_found(conn, world: World) -> None:
    """Another organization's order, location or product is 404 not_found; nothing changes."""
    a, b = world.a, world.b
    order = _draft(conn, world)
    mine = (a.locations["WH1"], items((a.products["P2"], 1)), None, None, None)
    assert _refused(conn, b.users["owner"], UPDATE, (order, *mine)) == ("PT404", "not_found")
    assert _refused(conn, world.outsider, UPDATE, (order, *mine)) == ("PT404", "not_found")
    foreign_location = (order, b.locations["WH1"], items((a.products["P2"], 1)), None, None, None)
    assert _refused(conn, a.users["staff"], UPDATE, foreign_location) == ("PT404", "not_found")
    foreign_product = (order, a.locations["WH1"], items((b.products["P2"], 1)), None, None, None)
    assert _refused(conn, a.users["staff"], UPDATE, foreign_product) == ("PT404", "not_found")
    assert conn.execute(
        "select array_agg(product_id::text) from public.order_items where order_id = %s", (order,)
    ).fetchone()[0] == [a.products["P1"]]


def test_only_drafts_can_be_edited(conn, world: World) -> None:
    """A confirmed (or cancelled) order is 409 invalid_transition and keeps its lines."""
    a = world.a
    order = _draft(conn, world)
    call(conn, a.users["staff"], "select public.update_order_status(%s, 'confirmed')", (order,))
    params = (order, a.locations["WH1"], items((a.products["P2"], 1)), None, None, None)
    assert _refused(conn, a.users["staff"], UPDATE, params) == ("PT409", "invalid_transition")
    call(conn, a.users["staff"], "select public.update_order_status(%s, 'cancelled')", (order,))
    assert _refused(conn, a.users["staff"], UPDATE, params) == ("PT409", "invalid_transition")


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [{"product_id": None, "quantity": 1}],
        [{"quantity": 0}],
        "duplicate",
    ],
)
def test_bad_items_are_422_and_write_nothing(conn, world: World, lines) -> None:
    """Empty, incomplete, non-positive or duplicated lines: PT422 validation_failed."""
    a = world.a
    order = _draft(conn, world)
    if lines == "duplicate":
        lines = [{"product_id": a.products["P2"], "quantity": 1}] * 2
    params = (order, a.locations["WH1"], Jsonb(lines), None, None, None)
    assert _refused(conn, a.users["staff"], UPDATE, params) == ("PT422", "validation_failed")
    assert conn.execute(
        "select count(*) from public.order_items where order_id = %s", (order,)
    ).fetchone() == (1,)


def test_where_an_order_happens_is_checked_the_same_way(conn, world: World) -> None:
    """create_order and update_draft_order refuse the same places alike: another organization's
    location or supplier is not found (404), an inactive location invalid (422)."""
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    line = items((world.a.products["P1"], 1))
    inactive = str(
        conn.execute(
            "insert into public.locations (organization_id, name, code, kind, active)"
            " values (%s, 'Closed', 'CLOSED-X', 'store', false) returning id",
            (world.a.id,),
        ).fetchone()[0]
    )
    conn.commit()
    draft = _draft(conn, world)
    foreign_location = world.b.locations["WH1"]
    foreign_supplier = str(
        conn.execute(
            "insert into public.suppliers (organization_id, name) values (%s, 'Elsewhere')"
            " returning id",
            (world.b.id,),
        ).fetchone()[0]
    )
    conn.commit()
    cases = [
        (staff, "select public.create_order('sales', %s, %s)", (foreign_location, line)),
        (staff, UPDATE, (draft, foreign_location, line, None, None, None)),
    ]
    for uid, query, params in cases:
        assert _refused(conn, uid, query, params) == ("PT404", "not_found")
    for uid, query, params in [
        (staff, "select public.create_order('sales', %s, %s)", (inactive, line)),
        (staff, UPDATE, (draft, inactive, line, None, None, None)),
    ]:
        assert _refused(conn, uid, query, params) == ("PT422", "validation_failed")
    purchase = "select public.create_order('purchase', %s, %s, supplier_id => %s)"
    wh1 = world.a.locations["WH1"]
    assert _refused(conn, manager, purchase, (wh1, line, foreign_supplier)) == (
        "PT404",
        "not_found",
    )


@pytest.mark.parametrize(
    "query",
    [
        "select public.update_order_status(%s, 'cancelled')",
        "select public.update_draft_order(%s, %s, '[]')",
        "select public.dashboard()",
    ],
)
def test_a_token_without_a_user_is_401(conn, world: World, query: str) -> None:
    """Order changes and organization-scoped reads need a user: PT401 unauthorized (through
    private.require_user), never a 404 that would hide why."""
    order = _draft(conn, world)
    args = (order, world.a.locations["WH1"])[: query.count("%s")]
    with (
        pytest.raises(psycopg.Error) as info,
        conn.transaction(force_rollback=True),
    ):
        no_user = '{"role": "authenticated"}'
        conn.execute("select set_config('request.jwt.claims', %s, true)", (no_user,))
        conn.execute("set local role authenticated")
        conn.execute(query, args)
    assert error_of(info.value) == ("PT401", "unauthorized")
