"""The frontend's path end to end, as a brand-new user with curl-like calls."""

from __future__ import annotations

import csv
import io
import uuid


def test_user_story(api, new_user) -> None:
    """Sign up, create an organization, supplier, category, product; receive a purchase order,
    sell, see low stock and the dashboard change, export CSV."""
    uid = new_user()
    me = api.client(api.token(uid))
    slug = "story-" + uuid.uuid4().hex[:8]
    org = me.post("/organizations", json={"name": "Story Ltd", "slug": slug})
    assert org.status_code == 201, org.text
    org_id = org.json()["data"]["id"]
    assert me.get("/auth/me").json()["data"]["active_organization"] == org_id
    loc = me.post("/locations", json={"name": "Main", "code": "MAIN", "kind": "warehouse"})
    sup = me.post("/suppliers", json={"name": "Acme", "lead_time_days": 3})
    cat = me.post("/categories", json={"name": "Widgets"})
    assert (loc.status_code, sup.status_code, cat.status_code) == (201, 201, 201)
    loc_id, sup_id = loc.json()["data"]["id"], sup.json()["data"]["id"]
    product = me.post(
        "/products",
        json={
            "sku": "W-1",
            "name": "Widget",
            "price": "9.99",
            "unit_cost": "4",
            "category_id": cat.json()["data"]["id"],
            "supplier_id": sup_id,
            "low_stock_threshold": 5,
        },
    )
    assert product.status_code == 201, product.text
    pid = product.json()["data"]["id"]
    before = me.get("/analytics/dashboard").json()["data"]
    po = me.post(
        "/orders",
        json={
            "kind": "purchase",
            "location_id": loc_id,
            "supplier_id": sup_id,
            "items": [{"product_id": pid, "quantity": 10}],
        },
    )
    assert po.status_code == 201, po.text
    received = me.patch(f"/orders/{po.json()['data']['id']}/status", json={"status": "received"})
    assert received.status_code == 200, received.text
    assert me.get(f"/products/{pid}").json()["data"]["stock"][0]["on_hand"] == 10
    assert me.get("/products/low-stock").json()["data"] == []
    sold = me.post(
        "/orders",
        json={
            "kind": "sales",
            "location_id": loc_id,
            "items": [{"product_id": pid, "quantity": 6}],
        },
        headers={"Idempotency-Key": "story-sale"},
    )
    assert sold.status_code == 201, sold.text
    done = me.patch(f"/orders/{sold.json()['data']['id']}/status", json={"status": "fulfilled"})
    assert done.status_code == 200, done.text
    low = me.get("/products/low-stock").json()["data"]
    assert [(row["product_id"], row["on_hand"]) for row in low] == [(pid, 4)]
    after = me.get("/analytics/dashboard").json()["data"]
    assert after != before
    exported = me.get("/export/products.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["sku"] for row in rows] == ["W-1"]
    moves = list(csv.DictReader(io.StringIO(me.get("/export/movements.csv").text)))
    assert sorted(row["kind"] for row in moves) == ["receipt", "sale"]
