"""/api/v1 analytics, settings, auth, CSV export, /openapi.json and /docs."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.api.conftest import error_code

ANALYTICS = [
    ("dashboard", {}),
    ("sales", {"granularity": "month", "group_by": "product"}),
    ("inventory-turnover", {}),
    ("demand-forecast", {"horizon_days": 7}),
    ("reorder-suggestions", {}),
    ("valuation", {"method": "fifo"}),
]


@pytest.mark.parametrize(("path", "params"), ANALYTICS)
def test_analytics(api, path, params) -> None:
    """Every analytics route answers a JSON document to a member; invalid params are 422."""
    r = api.as_("viewer").get(f"/analytics/{path}", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["data"] is not None
    assert api.as_("viewer").get(f"/analytics/{path}", params={"bogus": 1}).status_code == 422


def test_analytics_other_organization_is_forbidden(api) -> None:
    """Naming an organization the caller is not a member of is 403."""
    r = api.as_("viewer").get("/analytics/dashboard", headers={"X-Organization-Id": api.world.b.id})
    assert r.status_code == 403 and error_code(r) == "forbidden"


def test_settings(api) -> None:
    """Members read settings; admins replace them (validated); managers may not."""
    r = api.as_("viewer").get("/settings")
    assert r.status_code == 200 and r.json()["data"]["organization_id"] == api.world.a.id
    admin = api.as_("admin")
    put = admin.put("/settings", json={"currency": "EUR", "expiry_warning_days": 14})
    assert put.status_code == 200, put.text
    assert put.json()["data"]["value"] == {"currency": "EUR", "expiry_warning_days": 14}
    bad = admin.put("/settings", json={"currency": "euro", "service_level": 2, "x": 1})
    assert {d["field"] for d in bad.json()["error"]["details"]} == {
        "currency",
        "service_level",
        "x",
    }
    denied = api.as_("manager").put("/settings", json={"currency": "GBP"})
    assert denied.status_code == 403, denied.text
    admin.put("/settings", json={})


def test_settings_round_trip_and_costing_keys(api) -> None:
    """What GET /settings answers can be PUT back unchanged; the costing keys are settable."""
    admin = api.as_("admin")
    put = admin.put("/settings", json={"costing_method": "fifo", "over_receipt_tolerance": 0.05})
    assert put.status_code == 200, put.text
    got = admin.get("/settings").json()["data"]
    again = admin.put("/settings", json=got)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["value"] == {
        "costing_method": "fifo",
        "over_receipt_tolerance": 0.05,
    }
    bad = admin.put("/settings", json={"costing_method": "lifo"})
    assert bad.status_code == 422, bad.text
    admin.put("/settings", json={})


def test_auth_me_refresh_logout(api) -> None:
    """me shows memberships and the active organization; refresh is 501 without Supabase;
    logout revokes the session at once."""
    uid = api.world.a.users["staff"]
    token = api.token(uid)
    client = api.client(token)
    me = client.get("/auth/me").json()["data"]
    assert me["user_id"] == uid and me["active_organization"] == api.world.a.id
    assert me["memberships"][0]["role"] == "staff"
    r = api.client().post("/auth/refresh", json={"refresh_token": "x"})
    assert r.status_code == 501 and error_code(r) == "not_implemented"
    out = client.post("/auth/logout")
    assert out.status_code == 200, out.text
    after = client.get("/products")
    assert after.status_code == 401
    assert api.client().post("/auth/logout").status_code == 401


def test_auth_v1_without_supabase_is_404(proxy_url) -> None:
    """/auth/v1/* is 404 JSON when NIMBUS_SUPABASE_URL is not set."""
    r = httpx.post(proxy_url + "/auth/v1/token?grant_type=password", json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_export_csv(api) -> None:
    """Products, orders and movements export as CSV with the list filters."""
    mgr = api.as_("manager")
    r = mgr.get("/export/products.csv", params={"search": "a-P"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"a-P1", "a-P2", "a-P3"} <= {row["sku"] for row in rows}
    assert all(row["sku"].startswith("a-") for row in rows)
    for name in ("orders", "movements"):
        r = mgr.get(f"/export/{name}.csv")
        assert r.status_code == 200 and r.text.count("\n") >= 1
    assert mgr.get("/export/products.csv", params={"limit": 5}).status_code == 422


def test_openapi_and_docs(proxy_url) -> None:
    """/openapi.json is OpenAPI 3.1 listing every route with its models; /docs serves the UI
    from local assets."""
    spec = httpx.get(proxy_url + "/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    assert "/api/v1/products/{id}" in spec["paths"]
    assert set(spec["paths"]["/api/v1/products/{id}"]) == {"get", "put", "patch", "delete"}
    assert "ProductIn" in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["ProductIn"]["additionalProperties"] is False
    assert len(spec["paths"]) >= 25
    page = httpx.get(proxy_url + "/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    js = httpx.get(proxy_url + "/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
