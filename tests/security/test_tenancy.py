"""BOLA matrix: the owner of organization a names organization b's ids, filters, embeds and bodies
on every table, view, RPC and /api/v1 route -> not one row of b comes back, not one row of b changes
(compared row by row in the database before and after)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.security.conftest import fingerprint, markers

EMBEDS = {
    "products": "*,organizations(*),stock_levels(*),categories(*),suppliers(*),lots(*)",
    "orders": "*,organizations(*),order_items(*,products(*)),locations(*)",
    "memberships": "*,organizations(*)",
    "stock_levels": "*,products(*),locations(*)",
    "organizations": "*,memberships(*),products(*)",
}


def relations(database_url: str) -> list[tuple[str, set[str]]]:
    """(name, columns) of every table and view PostgREST exposes in schema public."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select table_name, array_agg(column_name::text) from information_schema.columns"
            " where table_schema = 'public' group by 1 order by 1"
        ).fetchall()
    return [(name, set(cols)) for name, cols in rows]


def functions(database_url: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(name, [(argument, type)]) of every function in public that `authenticated` may execute."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select p.proname, coalesce(p.proargnames, '{}'),"
            " array(select format_type(t, null) from unnest(p.proargtypes) t)"
            " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'public' and p.prokind = 'f' and p.proname not like 'test\\_%'"
            " and has_function_privilege('authenticated', p.oid, 'execute')"
            " and p.prorettype <> 'trigger'::regtype order by 1"
        ).fetchall()
    return [(name, list(zip(names, types, strict=False))) for name, names, types in rows]


def hostile_value(arg: str, typ: str, b) -> object:
    """An argument value that names organization b's data."""
    if typ == "uuid":
        for word, value in (
            ("product", b.products["P1"]),
            ("from", b.locations["WH1"]),
            ("to", b.locations["ST1"]),
            ("location", b.locations["WH1"]),
            ("order", b.spare["orders"]),
            ("supplier", b.spare["suppliers"]),
            ("categor", b.spare["categories"]),
            ("parent", b.spare["categories"]),
        ):
            if word in arg:
                return value
        return b.id
    if typ in ("json", "jsonb"):
        return [{"product_id": b.products["P1"], "quantity": 1, "id": b.products["P1"]}]
    if typ in ("text", "character varying"):
        return {"code": "b-P1", "slug": b.slug, "status": "cancelled", "kind": "sales"}.get(
            arg, "b-P1"
        )
    if typ in ("numeric", "integer", "bigint", "real", "double precision", "smallint"):
        return 1
    if typ == "date":
        return "2020-01-01"
    if typ.startswith("timestamp"):
        return "2020-01-01T00:00:00Z"
    if typ == "boolean":
        return True
    return None


def leaks(text: str, secrets: set[str]) -> list[str]:
    """Markers of b found in an answer."""
    return [m for m in secrets if m in text]


@pytest.fixture(scope="module")
def b_state(world, database_url):
    """Organization b's markers and fingerprint before the module's attacks."""
    return markers(database_url, world.b.id), fingerprint(database_url, world.b.id)


def test_rest_reads_naming_b_return_none_of_b(world, database_url, client, bearer, b_state) -> None:
    """Every table/view x (plain, organization_id=eq.b, or=(...b...), id=eq.b-row, embeds)."""
    secrets, _ = b_state
    auth = bearer(world.a.users["owner"])
    b_ids = sorted(s for s in secrets if len(s) == 36)
    tried = ok = 0
    seen_a = False
    for name, cols in relations(database_url):
        queries = [{"select": "*"}]
        if "organization_id" in cols:
            queries += [
                {"organization_id": f"eq.{world.b.id}"},
                {"or": f"(organization_id.eq.{world.b.id},organization_id.is.null)"},
                {"organization_id": f"in.({world.b.id},{world.a.id})"},
                {"not.organization_id": f"eq.{world.a.id}"},
            ]
        if "id" in cols:
            queries += [
                {"id": f"in.({','.join(b_ids[:40])})"},
                {"or": "(" + ",".join(f"id.eq.{i}" for i in b_ids[:40]) + ")"},
            ]
        if name in EMBEDS:
            queries.append({"select": EMBEDS[name]})
        for params in queries:
            r = client.get(f"/rest/v1/{name}", params=params, headers=auth)
            tried += 1
            assert r.status_code < 500, (name, params, r.text)
            if r.status_code < 300:
                ok += 1
                assert not leaks(r.text, secrets), (name, params, r.text[:500])
                seen_a = seen_a or world.a.id in r.text
    assert seen_a and ok > len(relations(database_url)) // 2, (tried, ok)
    print(f"bola rest reads: {tried} requests, {ok} answered 2xx, 0 rows of b")


def test_rest_rpcs_naming_b_return_and_change_none_of_b(
    world, database_url, client, bearer, b_state
) -> None:
    """Every public RPC with arguments naming b's organization, products, locations, orders."""
    secrets, before = b_state
    auth = bearer(world.a.users["owner"])
    called = 0
    for name, args in functions(database_url):
        body = {arg: hostile_value(arg, typ, world.b) for arg, typ in args if arg}
        body = {k: v for k, v in body.items() if v is not None}
        for method in ("POST", "GET"):
            if method == "GET":
                params = {
                    k: json.dumps(v) if isinstance(v, list) else str(v) for k, v in body.items()
                }
                r = client.get(f"/rest/v1/rpc/{name}", params=params, headers=auth)
            else:
                r = client.post(f"/rest/v1/rpc/{name}", json=body, headers=auth)
            called += 1
            assert r.status_code < 500, (name, method, body, r.text)
            if r.status_code < 300:
                assert not leaks(r.text, secrets), (name, method, r.text[:500])
    assert called >= 20
    print(f"bola rpcs: {called} calls, 0 rows of b")
    assert fingerprint(database_url, world.b.id) == before


def test_rest_writes_naming_b_change_nothing(world, database_url, client, bearer, b_state) -> None:
    """PATCH/DELETE filtered on b, hijacking rows into a, inserts and self-membership into b."""
    secrets, before = b_state
    auth = {**bearer(world.a.users["owner"]), "Prefer": "return=representation"}
    b = world.b
    statuses = []
    for name, cols in relations(database_url):
        if "organization_id" in cols:
            where = {"organization_id": f"eq.{b.id}"}
            statuses.append(
                client.patch(
                    f"/rest/v1/{name}",
                    params=where,
                    json={"organization_id": world.a.id},
                    headers=auth,
                )
            )
            if "name" in cols:
                statuses.append(
                    client.patch(
                        f"/rest/v1/{name}", params=where, json={"name": "pwned"}, headers=auth
                    )
                )
            statuses.append(client.delete(f"/rest/v1/{name}", params=where, headers=auth))
            row = {"organization_id": b.id, "name": "pwned", "sku": "pwn", "code": "PWN"}
            row = {k: v for k, v in row.items() if k in cols}
            statuses.append(client.post(f"/rest/v1/{name}", json=row, headers=auth))
    statuses += [
        client.post(
            "/rest/v1/memberships",
            json={"user_id": world.a.users["owner"], "organization_id": b.id, "role": "owner"},
            headers=auth,
        ),
        client.patch(
            "/rest/v1/organizations",
            params={"id": f"eq.{b.id}"},
            json={"name": "pwned"},
            headers=auth,
        ),
        client.delete("/rest/v1/organizations", params={"id": f"eq.{b.id}"}, headers=auth),
        client.patch(
            "/rest/v1/memberships",
            params={"organization_id": f"eq.{b.id}"},
            json={"role": "viewer"},
            headers=auth,
        ),
        client.patch(
            "/rest/v1/products",
            params={"id": f"eq.{b.products['P1']}"},
            json={"price": 0},
            headers=auth,
        ),
        client.delete("/rest/v1/products", params={"id": f"eq.{b.products['P2']}"}, headers=auth),
        client.post(
            "/rest/v1/stock_movements",
            json={
                "organization_id": b.id,
                "product_id": b.products["P1"],
                "location_id": b.locations["WH1"],
                "quantity": 5,
                "kind": "adjustment",
            },
            headers=auth,
        ),
    ]
    print(f"bola rest writes: {len(statuses)} requests, 0 writes to b")
    for r in statuses:
        assert r.status_code < 500, (r.request.method, r.request.url, r.text)
        if r.status_code < 300:
            assert not leaks(r.text, secrets), (r.request.url, r.text[:300])
    assert fingerprint(database_url, b.id) == before


API_ITEMS = ("products", "categories", "suppliers", "locations", "orders")


def test_api_routes_naming_b_return_and_change_none_of_b(
    world, database_url, client, bearer, b_state
) -> None:
    """Every /api/v1 route: b's ids in the path, body and filters, and X-Organization-Id: b."""
    secrets, before = b_state
    b = world.b
    auth = bearer(world.a.users["owner"])
    as_b = {**auth, "X-Organization-Id": b.id}
    ids = {
        "products": b.products["P1"],
        "categories": b.spare["categories"],
        "suppliers": b.spare["suppliers"],
        "locations": b.locations["ST1"],
        "orders": b.spare["orders"],
    }
    bodies = {
        "products": {"sku": "pwn-" + uuid.uuid4().hex[:6], "name": "pwned"},
        "categories": {"name": "pwned"},
        "suppliers": {"name": "pwned"},
        "locations": {"name": "pwned", "code": "PWN", "kind": "store"},
    }
    calls = []
    for coll, rid in ids.items():
        calls += [
            ("GET", f"/api/v1/{coll}/{rid}", None, auth),
            ("GET", f"/api/v1/{coll}", None, as_b),
        ]
        if coll in bodies:
            calls += [
                ("PUT", f"/api/v1/{coll}/{rid}", bodies[coll], auth),
                ("PATCH", f"/api/v1/{coll}/{rid}", {"name": "pwned"}, auth),
                ("DELETE", f"/api/v1/{coll}/{rid}", None, auth),
                ("POST", f"/api/v1/{coll}", bodies[coll], as_b),
                ("PUT", f"/api/v1/{coll}/{rid}", bodies[coll], as_b),
            ]
    line = [{"product_id": b.products["P1"], "quantity": 1}]
    a_loc = world.a.locations["WH1"]
    calls += [
        ("GET", "/api/v1/products", None, auth | {}),
        ("PATCH", f"/api/v1/orders/{b.spare['orders']}/status", {"status": "cancelled"}, auth),
        (
            "PUT",
            f"/api/v1/orders/{b.spare['orders']}",
            {"location_id": b.locations["WH1"], "items": line},
            auth,
        ),
        (
            "POST",
            "/api/v1/orders",
            {"kind": "sales", "location_id": b.locations["WH1"], "items": line},
            auth,
        ),
        ("POST", "/api/v1/orders", {"kind": "sales", "location_id": a_loc, "items": line}, auth),
        (
            "POST",
            "/api/v1/orders",
            {"kind": "sales", "location_id": b.locations["WH1"], "items": line},
            as_b,
        ),
        (
            "POST",
            "/api/v1/stock/adjustments",
            {
                "product_id": b.products["P1"],
                "location_id": b.locations["WH1"],
                "quantity_delta": -5,
                "reason": "x",
            },
            auth,
        ),
        (
            "POST",
            "/api/v1/stock/adjustments",
            {
                "product_id": b.products["P1"],
                "location_id": a_loc,
                "quantity_delta": 5,
                "reason": "x",
            },
            auth,
        ),
        (
            "POST",
            "/api/v1/stock/transfers",
            {
                "product_id": b.products["P1"],
                "from_location_id": b.locations["WH1"],
                "to_location_id": a_loc,
                "quantity": 1,
            },
            auth,
        ),
        (
            "POST",
            "/api/v1/stock/transfers",
            {
                "product_id": b.products["P1"],
                "from_location_id": b.locations["WH1"],
                "to_location_id": b.locations["ST1"],
                "quantity": 1,
            },
            as_b,
        ),
        ("PUT", "/api/v1/settings", {"currency": "EUR"}, as_b),
        ("GET", "/api/v1/settings", None, as_b),
        ("PATCH", "/api/v1/products/bulk", {"rows": [{"id": b.products["P1"], "price": 0}]}, auth),
        (
            "POST",
            "/api/v1/products/bulk-upsert",
            {"rows": [{"sku": "b-P1", "name": "pwned"}]},
            as_b,
        ),
        ("GET", "/api/v1/products", {"location": b.locations["WH1"]}, auth),
        ("GET", "/api/v1/orders", {"location": b.locations["WH1"]}, auth),
        ("GET", "/api/v1/stock/movements", {"product": b.products["P1"]}, auth),
        ("GET", "/api/v1/products/lookup", {"code": "b-P1"}, auth),
        ("GET", "/api/v1/analytics/demand-forecast", {"product": b.products["P1"]}, auth),
    ]
    for path in (
        "/api/v1/export/products.csv",
        "/api/v1/export/orders.csv",
        "/api/v1/export/movements.csv",
        "/api/v1/products/low-stock",
        "/api/v1/products/expiring-soon",
        "/api/v1/analytics/dashboard",
        "/api/v1/analytics/sales",
        "/api/v1/analytics/inventory-turnover",
        "/api/v1/analytics/reorder-suggestions",
        "/api/v1/analytics/valuation",
        "/api/v1/stock/movements",
        "/api/v1/auth/me",
    ):
        calls += [("GET", path, None, as_b), ("GET", path, None, auth)]
    for method, path, body, headers in calls:
        if method == "GET":
            r = client.get(path, params=body, headers=headers)
        else:
            r = client.request(method, path, json=body, headers=headers)
        assert r.status_code < 500, (method, path, r.text)
        if r.status_code < 300:
            assert not leaks(r.text, secrets), (method, path, r.text[:400])
        if headers is as_b and method != "GET":  # reads: empty or 4xx, never b (checked above)
            assert r.status_code in (400, 403, 404), (method, path, r.status_code, r.text[:300])
    assert len(calls) >= 60
    print(f"bola api: {len(calls)} requests, 0 rows of b, 0 writes to b")
    assert fingerprint(database_url, b.id) == before
