"""/api/v1/products/bulk, bulk-upsert and PATCH bulk: one transaction, all or nothing, every bad
row named by its index, manager and above, tenant isolation, cache invalidation."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest

from tests.api.conftest import error_code


def prefix() -> str:
    """A unique SKU prefix for one test."""
    return "B-" + uuid.uuid4().hex[:8] + "-"


def stored(database_url: str, sku_prefix: str) -> dict[str, tuple]:
    """sku -> (name, price, low_stock_threshold, active) of the stored products with the prefix."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select sku, name, price, low_stock_threshold, active from public.products"
            " where sku like %s",
            (sku_prefix + "%",),
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def price_of(database_url: str, product_id: str) -> Decimal:
    """The stored price of a product."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "select price from public.products where id = %s", (product_id,)
        ).fetchone()[0]


def test_bulk_create_writes_every_row_and_invalidates_lists(api, database_url) -> None:
    """201 with every row in request order; a cached list sees them at once."""
    mgr = api.as_("manager")
    p = prefix()
    before = mgr.get("/products", params={"search": p})
    assert before.json()["pagination"]["total"] == 0
    rows = [
        {"sku": p + "1", "name": "One", "price": "1.50"},
        {"sku": p + "2", "name": "Two", "barcode": p + "bc"},
        {"sku": p + "3", "name": "Three", "low_stock_threshold": 4},
    ]
    r = mgr.post("/products/bulk", json={"rows": rows})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert (data["created"], data["updated"]) == (3, 0)
    assert [row["sku"] for row in data["rows"]] == [p + "1", p + "2", p + "3"]
    assert all(row["organization_id"] == api.world.a.id for row in data["rows"])
    after = mgr.get("/products", params={"search": p})
    assert after.json()["pagination"]["total"] == 3
    assert stored(database_url, p)[p + "1"][1] == Decimal("1.50")


def test_bulk_create_names_every_bad_row_and_writes_nothing(api, database_url) -> None:
    """pydantic errors and database problems (existing sku, repeated sku, other tenant's
    category) are reported per row index in one 422; the valid rows are not written."""
    p = prefix()
    rows = [
        {"sku": p + "ok", "name": "Fine"},
        {"sku": p + "bad", "name": "", "price": -1, "organization_id": api.world.b.id},
        {"sku": "a-P1", "name": "Exists already"},
        {"sku": p + "ok", "name": "Repeated"},
        {"sku": p + "cat", "name": "Foreign", "category_id": api.world.b.spare["categories"]},
        {"sku": p + "bc", "name": "Barcode taken", "barcode": "bc-a-P2"},
    ]
    r = api.as_("manager").post("/products/bulk", json={"rows": rows})
    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_failed"
    details = r.json()["error"]["details"]
    fields = {d["index"]: {e["field"] for e in d["errors"]} for d in details}
    assert fields == {
        1: {"name", "price", "organization_id"},
        2: {"sku"},
        3: {"sku"},
        4: {"category_id"},
        5: {"barcode"},
    }
    assert stored(database_url, p) == {}


def test_bulk_create_database_conflict_alone_names_the_row(api, database_url) -> None:
    """Valid rows whose sku exists: 409 conflict naming that row (type unique), nothing
    written (like a single POST of an existing sku)."""
    p = prefix()
    rows = [{"sku": p + "new", "name": "New"}, {"sku": "a-P2", "name": "Taken"}]
    r = api.as_("manager").post("/products/bulk", json={"rows": rows})
    assert r.status_code == 409 and error_code(r) == "conflict", r.text
    assert r.json()["error"]["details"] == [
        {"index": 1, "errors": [{"field": "sku", "message": "already exists", "type": "unique"}]}
    ]
    assert stored(database_url, p) == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": []}, "rows"),
        ({"rows": {"sku": "x"}}, "rows"),
        ({}, "rows"),
        ({"rows": [{"sku": "x", "name": "y"}], "mode": "insert"}, "mode"),
        ([{"sku": "x", "name": "y"}], "body"),
    ],
)
def test_bulk_body_shape(api, body, field) -> None:
    """The body is {"rows": [1..NIMBUS_BULK_MAX objects]}; anything else is 422."""
    r = api.as_("manager").post("/products/bulk", json=body)
    assert r.status_code == 422, r.text
    assert field in {d["field"] for d in r.json()["error"]["details"]}


def test_bulk_limit_and_not_json(api, database_url) -> None:
    """More than NIMBUS_BULK_MAX (500) rows is 422; a body that is not JSON is 400."""
    p = prefix()
    rows = [{"sku": f"{p}{i}", "name": "n"} for i in range(501)]
    r = api.as_("manager").post("/products/bulk", json={"rows": rows})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rows"
    bad = api.as_("manager").post(
        "/products/bulk", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and error_code(bad) == "bad_request"
    assert stored(database_url, p) == {}


def test_bulk_upsert_inserts_and_replaces_by_sku(api, database_url) -> None:
    """bulk-upsert inserts new skus and replaces existing ones (an archived one is restored)."""
    mgr = api.as_("manager")
    p = prefix()
    made = mgr.post("/products/bulk", json={"rows": [{"sku": p + "1", "name": "Old"}]})
    first = made.json()["data"]["rows"][0]
    assert mgr.delete(f"/products/{first['id']}").status_code == 200
    rows = [
        {"sku": p + "1", "name": "Renamed", "price": "9.99", "low_stock_threshold": 2},
        {"sku": p + "2", "name": "Added"},
    ]
    r = mgr.post("/products/bulk-upsert", json={"rows": rows})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["created"], data["updated"]) == (1, 1)
    assert data["rows"][0]["id"] == first["id"] and data["rows"][0]["archived_at"] is None
    assert stored(database_url, p) == {
        p + "1": ("Renamed", Decimal("9.99"), 2, True),
        p + "2": ("Added", Decimal("0.00"), None, True),
    }


def test_bulk_upsert_bad_row_writes_nothing(api, database_url) -> None:
    """An upsert with one invalid row changes no row (the existing one keeps its name)."""
    mgr = api.as_("manager")
    p = prefix()
    mgr.post("/products/bulk", json={"rows": [{"sku": p + "1", "name": "Kept"}]})
    rows = [
        {"sku": p + "1", "name": "Changed"},
        {"sku": p + "2", "name": "New", "supplier_id": str(uuid.uuid4())},
    ]
    r = mgr.post("/products/bulk-upsert", json={"rows": rows})
    assert r.status_code == 422, r.text
    assert [d["index"] for d in r.json()["error"]["details"]] == [1]
    assert stored(database_url, p) == {p + "1": ("Kept", Decimal("0.00"), None, True)}


def test_bulk_patch_changes_prices_and_thresholds(api, database_url) -> None:
    """PATCH /products/bulk changes the sent fields of each id; null resets a threshold."""
    mgr = api.as_("manager")
    p = prefix()
    made = mgr.post(
        "/products/bulk",
        json={
            "rows": [
                {"sku": p + "1", "name": "x", "low_stock_threshold": 3},
                {"sku": p + "2", "name": "y"},
            ]
        },
    ).json()["data"]["rows"]
    changes = [
        {"id": made[0]["id"], "price": "12.30", "low_stock_threshold": None},
        {"id": made[1]["id"], "low_stock_threshold": 7},
    ]
    r = mgr.patch("/products/bulk", json={"rows": changes})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["updated"] == 2
    assert stored(database_url, p) == {
        p + "1": ("x", Decimal("12.30"), None, True),
        p + "2": ("y", Decimal("0.00"), 7, True),
    }


def test_bulk_patch_unknown_and_other_tenant_ids_change_nothing(api, database_url) -> None:
    """Ids of another organization or unknown ids: 404 naming those rows; nothing changed."""
    own = api.world.a.products["P1"]
    before = price_of(database_url, own)
    changes = [
        {"id": own, "price": "77.00"},
        {"id": api.world.b.products["P1"], "price": "1.00"},
        {"id": str(uuid.uuid4()), "price": "1.00"},
    ]
    r = api.as_("manager").patch("/products/bulk", json={"rows": changes})
    assert r.status_code == 404, r.text
    assert error_code(r) == "not_found"
    assert [(d["index"], d["errors"][0]["field"]) for d in r.json()["error"]["details"]] == [
        (1, "id"),
        (2, "id"),
    ]
    assert price_of(database_url, own) == before
    assert price_of(database_url, api.world.b.products["P1"]) != Decimal("1.00")


def test_bulk_patch_invalid_rows(api) -> None:
    """A row without a change, an explicit null price, a repeated id: 422 per row."""
    own = api.world.a.products["P2"]
    changes = [
        {"id": own},
        {"id": own, "price": None},
        {"id": api.world.a.products["P3"], "price": "1"},
        {"id": api.world.a.products["P3"], "unit_cost": "1"},
    ]
    r = api.as_("manager").patch("/products/bulk", json={"rows": changes})
    assert r.status_code == 422, r.text
    assert [d["index"] for d in r.json()["error"]["details"]] == [0, 1, 3]


@pytest.mark.parametrize("role", ["viewer", "staff"])
def test_roles_below_manager_are_denied(api, database_url, role) -> None:
    """Viewers and staff get 403 on every bulk route and nothing is written."""
    client = api.as_(role)
    p = prefix()
    rows = [{"sku": p + "1", "name": "x"}]
    for method, path, body in (
        ("POST", "/products/bulk", {"rows": rows}),
        ("POST", "/products/bulk-upsert", {"rows": rows}),
        ("PATCH", "/products/bulk", {"rows": [{"id": api.world.a.products["P1"], "price": "5"}]}),
    ):
        r = client.request(method, path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert error_code(r) == "forbidden"
    assert stored(database_url, p) == {}


def test_other_organization_header_is_forbidden(api, database_url) -> None:
    """A manager of a naming organization b in X-Organization-Id gets 403; nothing written."""
    p = prefix()
    r = api.as_("manager").post(
        "/products/bulk",
        json={"rows": [{"sku": p + "1", "name": "x"}]},
        headers={"X-Organization-Id": api.world.b.id},
    )
    assert r.status_code == 403 and error_code(r) == "forbidden"
    assert stored(database_url, p) == {}
