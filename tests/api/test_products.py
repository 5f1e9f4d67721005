"""/api/v1/products: listing, filters, item with stock, writes, archive, role and tenant rules."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import error_code


def sku() -> str:
    """A unique SKU."""
    return "T-" + uuid.uuid4().hex[:10]


def test_list_paginates_with_exact_total(api) -> None:
    """page/limit slice the rows; total and pages come from PostgREST's exact count."""
    r = api.as_("viewer").get("/products", params={"limit": 2, "page": 2, "sort": "sku"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pagination"]["page"] == 2 and body["pagination"]["count"] == "exact"
    assert body["pagination"]["pages"] == -(-body["pagination"]["total"] // 2)
    assert len(body["data"]) == 2
    assert all(p["organization_id"] == api.world.a.id for p in body["data"])


def test_page_past_the_end_is_empty(api) -> None:
    """A page beyond the last one is an empty list, not an error."""
    r = api.as_("viewer").get("/products", params={"page": 999})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [] and r.json()["pagination"]["total"] >= 4


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"sort": "password"},
        {"category": "not-a-uuid"},
        {"active": "maybe"},
        {"unknown": "1"},
        {"search": ""},
    ],
)
def test_bad_query_is_422_with_details(api, params) -> None:
    """Every invalid or unknown query parameter is refused with a field error."""
    r = api.as_("viewer").get("/products", params=params)
    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_failed"
    assert r.json()["error"]["details"][0]["field"] == next(iter(params))


def test_search_escapes_reserved_characters(api) -> None:
    """Search matches name, sku or barcode literally; commas, quotes and % are data."""
    mgr = api.as_("manager")
    code = sku()
    made = mgr.post("/products", json={"sku": code, "name": 'Odd, "name" (50%) x.y'})
    assert made.status_code == 201, made.text
    for term in ['"name" (50%', code.lower(), "50%", ","]:
        r = mgr.get("/products", params={"search": term})
        assert r.status_code == 200, r.text
        assert code in [p["sku"] for p in r.json()["data"]], term
    r = mgr.get("/products", params={"search": "5_%"})
    assert r.status_code == 200 and r.json()["data"] == []


def test_filters(api) -> None:
    """category, supplier, location, low_stock and active filter the list."""
    w = api.world.a
    mgr = api.as_("manager")
    made = mgr.post(
        "/products",
        json={
            "sku": sku(),
            "name": "Filtered",
            "category_id": w.spare["categories"],
            "supplier_id": w.spare["suppliers"],
            "low_stock_threshold": 5,
        },
    ).json()["data"]
    by_cat = mgr.get("/products", params={"category": w.spare["categories"]}).json()["data"]
    assert [p["id"] for p in by_cat] == [made["id"]]
    assert by_cat[0]["category"]["name"] == "Spare"
    by_sup = mgr.get("/products", params={"supplier": w.spare["suppliers"]}).json()["data"]
    assert made["id"] in [p["id"] for p in by_sup]
    at = mgr.get("/products", params={"location": w.locations["WH1"], "limit": 100}).json()
    ids = {p["id"] for p in at["data"]}
    assert set(w.products.values()) <= ids and made["id"] not in ids
    low = mgr.get("/products", params={"low_stock": "true", "limit": 100}).json()["data"]
    rule = mgr.get("/products/low-stock", params={"limit": 100}).json()["data"]
    assert {p["id"] for p in low} == {row["product_id"] for row in rule}
    high = mgr.get("/products", params={"low_stock": "false", "limit": 100}).json()["data"]
    assert not {p["id"] for p in high} & {p["id"] for p in low}
    inactive = mgr.get("/products", params={"active": "false"}).json()["data"]
    assert all(not p["active"] for p in inactive)


def test_get_one_with_stock_and_lots(api) -> None:
    """An item carries its stock per location and its lots."""
    w = api.world.a
    r = api.as_("viewer").get(f"/products/{w.products['P3']}")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    wh1 = next(s for s in data["stock"] if s["location"]["code"] == "WH1")
    assert wh1["on_hand"] >= 110
    assert "LOT-1" in [lot["lot_number"] for lot in data["lots"]]


def test_missing_other_tenant_and_malformed_ids(api) -> None:
    """Another organization's product is 404 like a missing one; so is a path whose id is not
    a UUID (no such resource; and `PUT /products/low-stock` is then a 405, not a bad id)."""
    viewer = api.as_("viewer")
    assert error_code(viewer.get(f"/products/{uuid.uuid4()}")) == "not_found"
    other = viewer.get(f"/products/{api.world.b.products['P1']}")
    assert other.status_code == 404 and error_code(other) == "not_found"
    assert viewer.get("/products/xyz").status_code == 404
    patch = api.as_("manager").patch(f"/products/{api.world.b.products['P1']}", json={"name": "x"})
    assert patch.status_code == 404, patch.text


def test_create_replace_patch_archive(api) -> None:
    """POST 201, PUT resets omitted fields, PATCH changes only sent ones, DELETE archives."""
    mgr = api.as_("manager")
    code = sku()
    r = mgr.post(
        "/products", json={"sku": code, "name": "New", "price": "12.50", "barcode": "B" + code}
    )
    assert r.status_code == 201, r.text
    pid = r.json()["data"]["id"]
    assert r.json()["data"]["organization_id"] == api.world.a.id
    put = mgr.put(f"/products/{pid}", json={"sku": code, "name": "Renamed"})
    assert put.status_code == 200, put.text
    assert put.json()["data"]["barcode"] is None and put.json()["data"]["price"] == 0
    patch = mgr.patch(f"/products/{pid}", json={"price": 3.25})
    assert patch.json()["data"]["price"] == 3.25 and patch.json()["data"]["name"] == "Renamed"
    gone = mgr.delete(f"/products/{pid}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["data"]["archived_at"] and not gone.json()["data"]["active"]
    listed = [p["id"] for p in mgr.get("/products", params={"search": code}).json()["data"]]
    assert listed == []
    archived = mgr.get("/products", params={"search": code, "archived": "true"}).json()["data"]
    assert [p["id"] for p in archived] == [pid]


def test_duplicate_sku_is_conflict(api) -> None:
    """A taken SKU is 409 conflict naming the field."""
    mgr = api.as_("manager")
    code = sku()
    assert mgr.post("/products", json={"sku": code, "name": "One"}).status_code == 201
    r = mgr.post("/products", json={"sku": code, "name": "Two"})
    assert r.status_code == 409 and error_code(r) == "conflict", r.text
    assert "sku" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "no sku"}, {"sku"}),
        ({"sku": "", "name": "x"}, {"sku"}),
        ({"sku": "x" * 65, "name": "x"}, {"sku"}),
        ({"sku": "ok", "name": "x", "price": -1}, {"price"}),
        ({"sku": "ok", "name": "x", "price": "1.234"}, {"price"}),
        ({"sku": "ok", "name": "x", "safety_stock": -1}, {"safety_stock"}),
        ({"sku": "ok", "name": "x", "category_id": "nope"}, {"category_id"}),
        ({"sku": "ok", "name": "x", "organization_id": str(uuid.uuid4())}, {"organization_id"}),
        (
            {"sku": "ok", "name": "x", "id": str(uuid.uuid4()), "created_at": "now"},
            {"id", "created_at"},
        ),
        ({"sku": "a\x00b", "name": "x"}, {"sku"}),
    ],
)
def test_invalid_bodies_list_every_field(api, body, fields) -> None:
    """Each kind of invalid field is a 422 naming it (mass assignment included)."""
    r = api.as_("manager").post("/products", json=body)
    assert r.status_code == 422, r.text
    assert {d["field"] for d in r.json()["error"]["details"]} == fields


def test_not_json_and_empty_patch(api) -> None:
    """A body that is not JSON is 400; a PATCH with no field is 422."""
    mgr = api.as_("manager")
    r = mgr.post("/products", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error_code(r) == "bad_request"
    r = mgr.patch(f"/products/{api.world.a.products['P1']}", json={})
    assert r.status_code == 422


def test_unknown_category_reference_is_422(api) -> None:
    """A category id that does not exist (or is another tenant's) is a validation error."""
    r = api.as_("manager").post(
        "/products",
        json={"sku": sku(), "name": "x", "category_id": api.world.b.spare["categories"]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "category_id"


@pytest.mark.parametrize("role", ["staff", "viewer"])
def test_roles_below_manager_cannot_manage_products(api, role) -> None:
    """Staff and viewers read products but get 403 on every write."""
    client = api.as_(role)
    pid = api.world.a.products["P1"]
    assert client.get(f"/products/{pid}").status_code == 200
    for r in (
        client.post("/products", json={"sku": sku(), "name": "x"}),
        client.put(f"/products/{pid}", json={"sku": "a-P1", "name": "x"}),
        client.patch(f"/products/{pid}", json={"name": "x"}),
        client.delete(f"/products/{pid}"),
    ):
        assert r.status_code == 403, r.text
        assert error_code(r) == "forbidden"


def test_no_token_and_revoked_token(api) -> None:
    """No token is 401; so is a garbage one."""
    assert api.client().get("/products").status_code == 401
    assert api.client("x.y.z").get("/products").status_code == 401


def test_low_stock_expiring_lookup(api) -> None:
    """low-stock lists products at or below threshold; expiring-soon finds LOT-1; lookup by code."""
    w = api.world.a
    mgr = api.as_("manager")
    r = mgr.patch(f"/products/{w.products['P2']}", json={"low_stock_threshold": 1000})
    assert r.status_code == 200, r.text
    low = mgr.get("/products/low-stock")
    assert low.status_code == 200, low.text
    assert w.products["P2"] in [row["product_id"] for row in low.json()["data"]]
    assert low.json()["pagination"]["total"] >= 1
    listed = mgr.get("/products", params={"low_stock": "true"}).json()["data"]
    assert w.products["P2"] in [p["id"] for p in listed]
    mgr.patch(f"/products/{w.products['P2']}", json={"low_stock_threshold": None})
    soon = mgr.get("/products/expiring-soon", params={"days": 3650})
    assert soon.status_code == 200, soon.text
    assert "LOT-1" in [row["lot_number"] for row in soon.json()["data"]]
    assert mgr.get("/products/expiring-soon", params={"days": -1}).status_code == 422
    found = mgr.get("/products/lookup", params={"code": "bc-a-P1"})
    assert found.status_code == 200 and found.json()["data"]["id"] == w.products["P1"]
    assert mgr.get("/products/lookup", params={"code": "nothing"}).status_code == 404
    assert mgr.get("/products/lookup", params={"code": "bc-b-P1"}).status_code == 404
    assert mgr.get("/products/lookup").status_code in (400, 422)


def test_organization_header(api) -> None:
    """X-Organization-Id narrows reads; a malformed one is 422; another org's reads are empty."""
    viewer = api.as_("viewer")
    own = viewer.get("/products", headers={"X-Organization-Id": api.world.a.id})
    assert own.status_code == 200 and own.json()["pagination"]["total"] >= 4
    other = viewer.get("/products", headers={"X-Organization-Id": api.world.b.id})
    assert other.status_code == 200 and other.json()["data"] == []
    assert viewer.get("/products", headers={"X-Organization-Id": "x"}).status_code == 422
    r = api.as_("manager").post(
        "/products", json={"sku": sku(), "name": "x"}, headers={"X-Organization-Id": api.world.b.id}
    )
    assert r.status_code == 403, r.text


def test_cache_serves_then_invalidates_on_write(api) -> None:
    """A repeated GET is a cache hit; a write through the API makes the next GET fresh."""
    mgr = api.as_("manager")
    pid = api.world.a.products["P1"]
    mgr.get(f"/products/{pid}")
    hit = mgr.get(f"/products/{pid}")
    assert hit.headers["X-Cache"] == "HIT"
    mgr.patch(f"/products/{pid}", json={"description": "fresh " + sku()})
    after = mgr.get(f"/products/{pid}")
    assert after.headers["X-Cache"] == "MISS"
    assert after.json()["data"]["description"].startswith("fresh ")
