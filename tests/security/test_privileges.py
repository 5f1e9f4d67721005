"""Mass assignment and privilege: bodies carrying organization_id, id, timestamps, stock levels or
role are rejected or ignored, and every write route answers exactly the role matrix of the domain
(viewer < staff < manager < admin < owner), with denied writes changing nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.security.conftest import fingerprint
from tests.support.domain import RANK, call, items, make_product, stock

FORGED = {
    "organization_id": None,  # filled with b's id
    "id": "00000000-0000-4000-8000-000000000001",
    "created_at": "2001-01-01T00:00:00Z",
    "updated_at": "2001-01-01T00:00:00Z",
    "on_hand": 999999,
    "quantity": 999999,
    "role": "owner",
}


def fresh(database_url: str, world, kind: str) -> str:
    """A new row of organization a for one write (so each attempt has its own target)."""
    a = world.a
    with psycopg.connect(database_url) as conn:
        tag = uuid.uuid4().hex[:8]
        if kind == "products":
            return make_product(conn, a.id, "sec-" + tag)
        if kind == "categories":
            sql = (
                "insert into public.categories (organization_id, name) values (%s, %s) returning id"
            )
            args = (a.id, "c-" + tag)
        elif kind == "suppliers":
            sql = (
                "insert into public.suppliers (organization_id, name) values (%s, %s) returning id"
            )
            args = (a.id, "s-" + tag)
        elif kind == "locations":
            sql = (
                "insert into public.locations (organization_id, name, code, kind)"
                " values (%s, %s, %s, 'store') returning id"
            )
            args = (a.id, "l-" + tag, "L" + tag)
        else:
            order_kind = "sales" if kind == "sales" else "purchase"
            who = a.users["manager"]
            conn.commit()
            return call(
                conn,
                who,
                "select public.create_order(%s, %s, %s)",
                (order_kind, a.locations["WH1"], items((a.products["P1"], 1))),
            )[0][0]["id"]
        row = conn.execute(sql, args).fetchone()[0]
        conn.commit()
        return str(row)


def fresh_lot(database_url: str, world) -> str:
    """A new lot of a new product of organization a at WH1, holding 5 units."""
    a = world.a
    with psycopg.connect(database_url) as conn:
        product = make_product(conn, a.id, "lot-" + uuid.uuid4().hex[:8])
        conn.commit()
        stock(conn, a.users["staff"], product, a.locations["WH1"], 5, lot_number="SEC")
        return str(
            conn.execute("select id from public.lots where product_id = %s", (product,)).fetchone()[
                0
            ]
        )


@pytest.mark.parametrize("extra", sorted(FORGED))
def test_api_mass_assignment_is_rejected(world, database_url, client, bearer, extra) -> None:
    """POST and PATCH /api/v1/products with a server-owned field: 422, database unchanged."""
    value = world.b.id if extra == "organization_id" else FORGED[extra]
    auth = bearer(world.a.users["owner"])
    before = fingerprint(database_url, world.a.id), fingerprint(database_url, world.b.id)
    sku = "mass-" + uuid.uuid4().hex[:8]
    r = client.post("/api/v1/products", json={"sku": sku, "name": "n", extra: value}, headers=auth)
    assert r.status_code == 422, r.text
    r = client.patch(
        f"/api/v1/products/{world.a.products['P1']}", json={extra: value}, headers=auth
    )
    assert r.status_code == 422, r.text
    r = client.post(
        "/api/v1/stock/adjustments",
        json={
            "product_id": world.a.products["P1"],
            "location_id": world.a.locations["WH1"],
            "quantity_delta": 1,
            "reason": "x",
            extra: value,
        },
        headers=auth,
    )
    assert r.status_code == 422, r.text
    assert (fingerprint(database_url, world.a.id), fingerprint(database_url, world.b.id)) == before


def test_rest_mass_assignment_is_rejected_or_ignored(world, database_url, client, bearer) -> None:
    """Via /rest/v1 a viewer cannot raise its role or join; nobody sets stock levels directly."""
    a = world.a
    before = fingerprint(database_url, a.id)
    viewer = bearer(a.users["viewer"])
    owner = bearer(a.users["owner"])
    attempts = [
        client.patch(
            "/rest/v1/memberships",
            params={"user_id": f"eq.{a.users['viewer']}"},
            json={"role": "owner"},
            headers=viewer,
        ),
        client.post(
            "/rest/v1/memberships",
            json={"user_id": a.users["viewer"], "organization_id": a.id, "role": "owner"},
            headers=viewer,
        ),
        client.post(
            "/rest/v1/memberships",
            json={"user_id": world.outsider, "organization_id": a.id, "role": "owner"},
            headers=bearer(world.outsider),
        ),
        client.patch(
            "/rest/v1/stock_levels",
            params={"product_id": f"eq.{a.products['P1']}"},
            json={"on_hand": 999999},
            headers=owner,
        ),
        client.post(
            "/rest/v1/stock_movements",
            json={
                "organization_id": a.id,
                "product_id": a.products["P1"],
                "location_id": a.locations["WH1"],
                "quantity": 999999,
                "kind": "adjustment",
            },
            headers=owner,
        ),
        client.patch(
            "/rest/v1/stock_movements",
            params={"product_id": f"eq.{a.products['P1']}"},
            json={"quantity": 999999},
            headers=owner,
        ),
        client.patch(
            "/rest/v1/products",
            params={"id": f"eq.{a.products['P1']}"},
            json={"organization_id": world.b.id},
            headers=owner,
        ),
        client.patch(
            "/rest/v1/orders",
            params={"id": f"eq.{a.spare['orders']}"},
            json={"status": "draft"},
            headers=viewer,
        ),
    ]
    for r in attempts:
        assert r.status_code < 500, (r.request.url, r.text)
    assert fingerprint(database_url, a.id) == before, [
        (r.request.method, str(r.request.url), r.status_code) for r in attempts
    ]


# (route, minimum role) exactly as docs/API.md and the SQL role checks state.
MATRIX = [
    ("POST /products", "manager"),
    ("PUT /products/{id}", "manager"),
    ("PATCH /products/{id}", "manager"),
    ("DELETE /products/{id}", "manager"),
    ("POST /categories", "manager"),
    ("PATCH /categories/{id}", "manager"),
    ("DELETE /categories/{id}", "manager"),
    ("POST /suppliers", "manager"),
    ("PATCH /suppliers/{id}", "manager"),
    ("DELETE /suppliers/{id}", "manager"),
    ("POST /locations", "manager"),
    ("PATCH /locations/{id}", "manager"),
    ("DELETE /locations/{id}", "manager"),
    ("PATCH /products/bulk", "manager"),
    ("POST /orders sales", "staff"),
    ("POST /orders purchase", "manager"),
    ("PATCH /orders/{id}/status sales", "staff"),
    ("PATCH /orders/{id}/status purchase", "manager"),
    ("POST /stock/adjustments", "staff"),
    ("POST /stock/transfers", "staff"),
    ("POST /orders/{id}/fulfilment sales", "staff"),
    ("POST /orders/{id}/receipt purchase", "manager"),
    ("POST /stock/write-offs", "manager"),
    ("POST /counts", "staff"),
    ("PATCH /lots/{id}/status", "manager"),
    ("PUT /settings", "admin"),
]
ROLES = ("viewer", "staff", "manager", "admin", "owner")


def request_for(route: str, world, database_url: str) -> tuple[str, str, dict]:
    """(method, path, body) of one write route against a fresh target of organization a."""
    a = world.a
    tag = uuid.uuid4().hex[:8]
    method, path, *variant = route.split()
    kind = path.split("/")[1]
    bodies = {
        "products": {"sku": "sec-" + tag, "name": "n"},
        "categories": {"name": "c-" + tag},
        "suppliers": {"name": "s-" + tag},
        "locations": {"name": "l-" + tag, "code": "C" + tag, "kind": "store"},
    }
    if path == "/products/bulk":
        return method, path, {"rows": [{"id": fresh(database_url, world, "products"), "price": 3}]}
    if path == "/orders":
        line = [{"product_id": a.products["P1"], "quantity": 1}]
        return method, path, {"kind": variant[0], "location_id": a.locations["WH1"], "items": line}
    if path == "/orders/{id}/status":
        order = fresh(database_url, world, variant[0])
        return method, f"/orders/{order}/status", {"status": "cancelled"}
    if path in ("/orders/{id}/fulfilment", "/orders/{id}/receipt"):
        order = fresh(database_url, world, variant[0])
        lines = [{"product_id": a.products["P1"], "quantity": 1}]
        return method, path.replace("{id}", order), {"lines": lines}
    if path == "/stock/write-offs":
        body = {"product_id": a.products["P1"], "location_id": a.locations["WH1"]}
        return method, path, {**body, "quantity": 1, "reason": "damaged"}
    if path == "/counts":
        return method, path, {"location_id": a.locations["WH1"]}
    if path == "/lots/{id}/status":
        return (
            method,
            path.replace("{id}", fresh_lot(database_url, world)),
            {"status": "quarantined"},
        )
    if path == "/stock/adjustments":
        return (
            method,
            path,
            {
                "product_id": a.products["P1"],
                "location_id": a.locations["WH1"],
                "quantity_delta": 1,
                "reason": "sec",
            },
        )
    if path == "/stock/transfers":
        return (
            method,
            path,
            {
                "product_id": a.products["P1"],
                "from_location_id": a.locations["WH1"],
                "to_location_id": a.locations["ST1"],
                "quantity": 1,
            },
        )
    if path == "/settings":
        return method, path, {"currency": "EUR"}
    if "{id}" in path:
        rid = fresh(database_url, world, kind)
        body = (
            None
            if method == "DELETE"
            else (bodies[kind] if method == "PUT" else {"name": "renamed-" + tag})
        )
        return method, path.replace("{id}", rid), body
    return method, path, bodies[kind]


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(world, database_url, client, bearer, role) -> None:
    """Each write route: 2xx at or above its minimum role, else 403 and nothing changed."""
    auth = bearer(world.a.users[role])
    wrong = []
    for route, minimum in MATRIX:
        method, path, body = request_for(route, world, database_url)
        before = fingerprint(database_url, world.a.id)
        r = client.request(method, "/api/v1" + path, json=body, headers=auth)
        allowed = RANK[role] >= RANK[minimum]
        if allowed and not 200 <= r.status_code < 300:
            wrong.append((route, role, r.status_code, r.text[:200]))
        if not allowed:
            if r.status_code != 403:
                wrong.append((route, role, r.status_code, r.text[:200]))
            elif fingerprint(database_url, world.a.id) != before:
                wrong.append((route, role, "denied but changed the database"))
    assert not wrong, wrong
