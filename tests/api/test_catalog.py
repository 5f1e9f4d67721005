"""/api/v1 categories, suppliers and locations: CRUD, conflicts, roles, tenants."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import error_code

BODIES = {
    "categories": lambda tag: {"name": "Cat " + tag},
    "suppliers": lambda tag: {"name": "Sup " + tag, "email": f"{tag}@example.test"},
    "locations": lambda tag: {"name": "Loc " + tag, "code": tag[:8].upper(), "kind": "store"},
}
INVALID = {
    "categories": {"name": ""},
    "suppliers": {"name": "x", "email": "not-an-email", "currency": "usd", "lead_time_days": 999},
    "locations": {"name": "x", "code": "x" * 33, "kind": "garage"},
}


@pytest.mark.parametrize("resource", list(BODIES))
def test_crud_cycle(api, resource) -> None:
    """Create 201, list, get, PUT, PATCH, then DELETE 200 and 404 afterwards."""
    mgr = api.as_("manager")
    tag = uuid.uuid4().hex[:10]
    made = mgr.post(f"/{resource}", json=BODIES[resource](tag))
    assert made.status_code == 201, made.text
    rid = made.json()["data"]["id"]
    listed = mgr.get(f"/{resource}", params={"search": tag, "sort": "-created_at"})
    assert [row["id"] for row in listed.json()["data"]] == [rid], listed.text
    assert mgr.get(f"/{resource}/{rid}").json()["data"]["id"] == rid
    put = mgr.put(f"/{resource}/{rid}", json=BODIES[resource](tag + "x"))
    assert put.status_code == 200, put.text
    patch = mgr.patch(f"/{resource}/{rid}", json={"name": "Renamed " + tag})
    assert patch.json()["data"]["name"] == "Renamed " + tag
    assert mgr.delete(f"/{resource}/{rid}").status_code == 200
    assert error_code(mgr.get(f"/{resource}/{rid}")) == "not_found"
    assert mgr.delete(f"/{resource}/{rid}").status_code == 404


@pytest.mark.parametrize("resource", list(BODIES))
def test_invalid_and_duplicate(api, resource) -> None:
    """Invalid fields are 422 each listed; a duplicate name/code is 409 conflict."""
    mgr = api.as_("manager")
    r = mgr.post(f"/{resource}", json=INVALID[resource])
    assert r.status_code == 422, r.text
    expected = {k for k in INVALID[resource] if k != "name" or resource == "categories"}
    assert {d["field"] for d in r.json()["error"]["details"]} == expected
    body = BODIES[resource](uuid.uuid4().hex[:10])
    assert mgr.post(f"/{resource}", json=body).status_code == 201
    dup = mgr.post(f"/{resource}", json=body)
    assert dup.status_code == 409 and error_code(dup) == "conflict", dup.text


@pytest.mark.parametrize("resource", list(BODIES))
def test_roles_and_tenants(api, resource) -> None:
    """Staff/viewers cannot write (403); another organization's rows are 404."""
    own, other = api.world.a.spare[resource], api.world.b.spare[resource]
    for role in ("staff", "viewer"):
        client = api.as_(role)
        assert client.post(f"/{resource}", json=BODIES[resource]("zz")).status_code == 403
        assert client.patch(f"/{resource}/{own}", json={"name": "x"}).status_code == 403
        assert client.delete(f"/{resource}/{own}").status_code == 403
    mgr = api.as_("manager")
    assert mgr.get(f"/{resource}/{other}").status_code == 404
    assert mgr.patch(f"/{resource}/{other}", json={"name": "x"}).status_code == 404
    assert mgr.delete(f"/{resource}/{other}").status_code == 404


def test_deleting_a_referenced_row_says_by_what(api) -> None:
    """A category, supplier or location still referenced is 409 naming the referencing table."""
    mgr = api.as_("manager")
    cat = mgr.post("/categories", json={"name": "Used " + uuid.uuid4().hex[:6]}).json()["data"]
    sup = mgr.post("/suppliers", json={"name": "Used " + uuid.uuid4().hex[:6]}).json()["data"]
    made = mgr.post(
        "/products",
        json={
            "sku": "R-" + uuid.uuid4().hex[:8],
            "name": "Ref",
            "category_id": cat["id"],
            "supplier_id": sup["id"],
        },
    )
    assert made.status_code == 201, made.text
    for path in (
        f"/categories/{cat['id']}",
        f"/suppliers/{sup['id']}",
        f"/locations/{api.world.a.locations['WH1']}",
    ):
        r = mgr.delete(path)
        assert r.status_code == 409, r.text
        assert error_code(r) == "conflict"
        assert r.json()["error"]["details"]["referenced_by"] in (
            "products",
            "stock_levels",
            "orders",
            "lots",
            "stock_movements",
        )


def test_location_filters(api) -> None:
    """kind and active filter locations; an unknown kind is 422."""
    mgr = api.as_("manager")
    stores = mgr.get("/locations", params={"kind": "store"}).json()["data"]
    assert stores and all(row["kind"] == "store" for row in stores)
    assert mgr.get("/locations", params={"kind": "garage"}).status_code == 422
