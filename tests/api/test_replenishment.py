"""/api/v1 replenishment: a rule written through PostgREST, the suggestions it causes, and draft
purchase orders made from them once (Idempotency-Key replay, a second call creates nothing)."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from tests.api.conftest import error_code


def test_rule_suggestion_and_draft_orders(api, database_url) -> None:
    """A manager's rule for the spare product at WH1 is suggested, turned into one draft order
    (replayed under its key, not repeated without), and is then covered by that draft."""
    w = api.world.a
    product, supplier, wh = w.spare["products"], w.spare["suppliers"], w.locations["WH1"]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "update public.products set supplier_id = %s where id = %s", (supplier, product)
        )
    manager = api.as_("manager")
    rest = httpx.Client(
        base_url=api.base + "/rest/v1",
        headers={"Authorization": "Bearer " + api.token(w.users["manager"])},
        timeout=30,
    )
    api.clients.append(rest)
    made = rest.post(
        "/reorder_rules",
        json={
            "organization_id": w.id,
            "product_id": product,
            "location_id": wh,
            "min_quantity": 5,
            "max_quantity": 20,
        },
        headers={"Prefer": "return=representation"},
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()[0]["id"]
    try:
        got = manager.get("/replenishment/suggestions", params={"location": wh})
        assert got.status_code == 200, got.text
        lines = [
            (po["supplier_id"], line)
            for po in got.json()["data"]["purchase_orders"]
            for line in po["lines"]
            if line["product_id"] == product
        ]
        assert len(lines) == 1 and lines[0][0] == supplier
        assert float(lines[0][1]["suggested_quantity"]) == 20
        assert api.as_("staff").post("/replenishment/orders").status_code == 403
        key = "r-" + uuid.uuid4().hex
        first = manager.post("/replenishment/orders", headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        body = first.json()["data"]
        mine = [o for o in body["orders"] if o["items"][0]["product_id"] == product]
        assert len(mine) == 1 and mine[0]["status"] == "draft"
        replay = manager.post("/replenishment/orders", headers={"Idempotency-Key": key})
        assert replay.status_code == 201 and replay.json()["data"]["replayed"] is True
        assert replay.json()["data"]["orders"] == body["orders"]
        again = manager.post("/replenishment/orders")
        assert again.status_code == 201 and again.json()["data"]["created"] == 0
        after = manager.get("/replenishment/suggestions", params={"location": wh}).json()["data"]
        assert product in {c["product_id"] for c in after["covered_by_drafts"]}
        bad = manager.get("/replenishment/suggestions", params={"limit": 0})
        assert bad.status_code == 422 and error_code(bad) == "validation_failed"
    finally:
        for order in body["orders"] if "body" in locals() else []:
            manager.patch(f"/orders/{order['id']}/status", json={"status": "cancelled"})
        rest.delete("/reorder_rules", params={"id": f"eq.{rule_id}"})
        with psycopg.connect(database_url) as conn:
            conn.execute("update public.products set supplier_id = null where id = %s", (product,))
