"""/api/v1 stock counts: open, record lines, post (stale lines refused), cancel, list, get."""

from __future__ import annotations

import uuid

import psycopg

from tests.api.conftest import error_code


def new_product(api, database_url: str, on_hand: int) -> str:
    """A product of organization a with on_hand units at WH1 (through adjust_stock)."""
    w = api.world.a
    with psycopg.connect(database_url) as conn:
        product = str(
            conn.execute(
                "insert into public.products (organization_id, sku, name) values (%s, %s, 'Count')"
                " returning id",
                (w.id, "cnt-" + uuid.uuid4().hex[:8]),
            ).fetchone()[0]
        )
    if on_hand:
        r = api.as_("staff").post(
            "/stock/adjustments",
            json={
                "product_id": product,
                "location_id": w.locations["WH1"],
                "quantity_delta": on_hand,
                "reason": "initial",
            },
        )
        assert r.status_code == 201, r.text
    return product


def level(api, product: str) -> float:
    """on_hand of product at WH1, as the API shows it."""
    got = api.as_("viewer").get(f"/products/{product}").json()["data"]
    return sum(
        s["on_hand"] for s in got["stock"] if s["location_id"] == api.world.a.locations["WH1"]
    )


def test_count_lifecycle(api, database_url) -> None:
    """Staff open a count and record lines; a manager posts it; on-hand follows the count; the
    count is listed and shown with its lines and variances."""
    w = api.world.a
    staff, manager = api.as_("staff"), api.as_("manager")
    short, over = new_product(api, database_url, 10), new_product(api, database_url, 2)
    r = staff.post("/counts", json={"location_id": w.locations["WH1"], "note": "aisle 1"})
    assert r.status_code == 201, r.text
    count = r.json()["data"]
    assert count["status"] == "open" and count["lines"] == []
    line = staff.post(f"/counts/{count['id']}/lines", json={"product_id": short, "counted": 7})
    assert line.status_code == 200, line.text
    assert line.json()["data"]["on_hand_at_count"] == 10
    assert (
        staff.post(
            f"/counts/{count['id']}/lines", json={"product_id": over, "counted": "5"}
        ).status_code
        == 200
    )
    denied = staff.post(f"/counts/{count['id']}/post")
    assert denied.status_code == 403 and error_code(denied) == "forbidden"
    done = manager.post(f"/counts/{count['id']}/post")
    assert done.status_code == 200, done.text
    assert done.json()["data"]["status"] == "posted"
    assert (level(api, short), level(api, over)) == (7, 5)

    listed = staff.get("/counts", params={"status": "posted", "location": w.locations["WH1"]})
    assert count["id"] in [c["id"] for c in listed.json()["data"]]
    got = staff.get(f"/counts/{count['id']}").json()["data"]
    assert {(ln["product"]["name"], ln["variance"]) for ln in got["lines"]} == {
        ("Count", -3),
        ("Count", 3),
    }
    again = manager.post(f"/counts/{count['id']}/post")
    assert again.status_code == 409 and error_code(again) == "count_closed"
    moves = staff.get("/stock/movements", params={"product": short, "kind": "adjustment"})
    assert moves.json()["data"][0]["reason"] == f"count {count['id']}"


def test_post_refused_when_stock_moved(api, database_url) -> None:
    """Stock moved after a line was counted: 409 count_stale naming the line; recount, post."""
    w = api.world.a
    staff, manager = api.as_("staff"), api.as_("manager")
    product = new_product(api, database_url, 8)
    count = staff.post("/counts", json={"location_id": w.locations["WH1"]}).json()["data"]
    staff.post(f"/counts/{count['id']}/lines", json={"product_id": product, "counted": 6})
    staff.post(
        "/stock/adjustments",
        json={
            "product_id": product,
            "location_id": w.locations["WH1"],
            "quantity_delta": -1,
            "reason": "broken",
        },
    )
    r = manager.post(f"/counts/{count['id']}/post")
    assert r.status_code == 409 and error_code(r) == "count_stale", r.text
    stale = r.json()["error"]["details"]["lines"]
    assert [(s["product_id"], s["on_hand_then"], s["on_hand_now"]) for s in stale] == [
        (product, 8, 7)
    ]
    assert level(api, product) == 7
    staff.post(f"/counts/{count['id']}/lines", json={"product_id": product, "counted": 6})
    assert manager.post(f"/counts/{count['id']}/post").status_code == 200
    assert level(api, product) == 6


def test_count_validation_roles_and_tenants(api, database_url) -> None:
    """Bad bodies are 422; viewers 403; another organization's counts and locations 404;
    the opener cancels, then the count is closed."""
    w, b = api.world.a, api.world.b
    staff = api.as_("staff")
    bad = staff.post("/counts", json={"location_id": "x", "extra": 1})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["error"]["details"]} == {"location_id", "extra"}
    assert (
        api.as_("viewer").post("/counts", json={"location_id": w.locations["WH1"]}).status_code
        == 403
    )
    foreign = staff.post("/counts", json={"location_id": b.locations["WH1"]})
    assert foreign.status_code == 404 and error_code(foreign) == "not_found"
    count = staff.post("/counts", json={"location_id": w.locations["ST1"]}).json()["data"]
    product = w.products["P1"]
    for counted in ("NaN", "-1", "1e400", "0.0001", True):
        r = staff.post(
            f"/counts/{count['id']}/lines", json={"product_id": product, "counted": counted}
        )
        assert r.status_code == 422, (counted, r.text)
    half = staff.post(
        f"/counts/{count['id']}/lines", json={"product_id": product, "counted": "0.5"}
    )
    assert half.status_code == 422 and error_code(half) == "validation_failed", half.text
    zero = staff.post(f"/counts/{count['id']}/lines", json={"product_id": product, "counted": 0})
    assert zero.status_code == 200, zero.text
    other = api.as_("owner", "b")
    assert other.get(f"/counts/{count['id']}").status_code == 404
    assert other.post(f"/counts/{count['id']}/post").status_code == 404
    assert other.post(f"/counts/{count['id']}/cancel").status_code == 404
    assert count["id"] not in [c["id"] for c in other.get("/counts").json()["data"]]
    assert staff.post(f"/counts/{uuid.uuid4()}/cancel").status_code == 404
    assert staff.post("/counts/nope/cancel").status_code == 404
    done = staff.post(f"/counts/{count['id']}/cancel")
    assert done.status_code == 200 and done.json()["data"]["status"] == "cancelled", done.text
    late = staff.post(f"/counts/{count['id']}/lines", json={"product_id": product, "counted": 1})
    assert late.status_code == 409 and error_code(late) == "count_closed"
