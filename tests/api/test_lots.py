"""/api/v1/lots: the list and its filters (status as of today), and quarantine."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.api.conftest import Api, error_code
from tests.support.domain import World, build_world, make_product, stock


@pytest.fixture(scope="module")
def lots(database_url: str, world: World) -> dict[str, str]:
    """A product of a with five lots: NEAR (5 days, WH1), FAR (400 days, ST1), QUAR (100 days,
    quarantined via SQL), PAST (its date 3 days ago, not yet scanned), EMPTY (200 days, no stock).
    Returns lot_number -> id, plus "product"."""
    a = world.a
    staff, wh, st1 = a.users["staff"], a.locations["WH1"], a.locations["ST1"]
    today = dt.date.today()
    with psycopg.connect(database_url) as conn:
        product = make_product(conn, a.id, f"LOTS-{uuid.uuid4().hex[:8]}")
        conn.commit()
        for number, days, where, qty in (
            ("NEAR", 5, wh, 4),
            ("FAR", 400, st1, 6),
            ("QUAR", 100, wh, 3),
            ("PAST", 10, wh, 2),
            ("EMPTY", 200, wh, 1),
        ):
            expiry = (today + dt.timedelta(days=days)).isoformat()
            stock(conn, staff, product, where, qty, lot_number=number, expiry_date=expiry)
        stock(conn, staff, product, wh, -1, lot_number="EMPTY")
        ids = {
            number: str(lot)
            for number, lot in conn.execute(
                "select lot_number, id from public.lots where product_id = %s", (product,)
            ).fetchall()
        }
        with conn.transaction():
            conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
            conn.execute(
                "update public.lots set status = 'quarantined' where id = %s", (ids["QUAR"],)
            )
        # Time passes for PAST; triggers off, so no scan has marked it expired yet.
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
            conn.execute(
                "update public.lots set expiry_date = current_date - 3 where id = %s",
                (ids["PAST"],),
            )
    return {**ids, "product": product}


def numbers(response) -> list[str]:
    """The lot numbers of a list response, in order (asserting a 200)."""
    assert response.status_code == 200, response.text
    return [row["lot_number"] for row in response.json()["data"]]


def test_list_by_product_soonest_first_with_product_and_location(api, lots) -> None:
    """product= lists the product's lots, soonest expiry first, with product and location."""
    r = api.as_("viewer").get("/lots", params={"product": lots["product"], "limit": 100})
    assert numbers(r) == ["PAST", "NEAR", "QUAR", "EMPTY", "FAR"]
    row = r.json()["data"][1]
    assert row["product"]["id"] == lots["product"] and row["location"]["code"] == "WH1"
    assert float(row["quantity"]) == 4 and row["status"] == "available"
    assert r.json()["pagination"]["total"] == 5


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "available"}, {"NEAR", "FAR", "EMPTY"}),
        ({"status": "quarantined"}, {"QUAR"}),
        ({"status": "expired"}, {"PAST"}),
        ({"expiring_within": "10"}, {"NEAR"}),
        ({"expiring_within": "150"}, {"NEAR", "QUAR"}),
        ({"expiring_within": "150", "status": "available"}, {"NEAR"}),
        ({"in_stock": "false"}, {"EMPTY"}),
        ({"in_stock": "true", "status": "available"}, {"NEAR", "FAR"}),
        ({"location": "ST1"}, {"FAR"}),
    ],
)
def test_filters(api, lots, params, expected) -> None:
    """status (as of today: a lot past its date is expired before the scan says so),
    expiring_within (days from today), in_stock and location, combined with AND."""
    if "location" in params:
        params = {**params, "location": api.world.a.locations[params["location"]]}
    r = api.as_("viewer").get("/lots", params={"product": lots["product"], **params})
    assert set(numbers(r)) == expected


@pytest.mark.parametrize(
    "params",
    [{"status": "gone"}, {"expiring_within": "-1"}, {"expiring_within": "x"}, {"product": "x"}],
)
def test_bad_filters_are_422(api, params) -> None:
    """Unknown status, negative or non-integer days, a malformed id: 422 naming the field."""
    r = api.as_("viewer").get("/lots", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == next(iter(params))


def test_other_organization_sees_none(api, lots) -> None:
    """b's members see none of a's lots, even naming a's product."""
    r = api.as_("owner", "b").get("/lots", params={"product": lots["product"]})
    assert numbers(r) == []


def test_quarantine_and_release(api, lots) -> None:
    """Manager quarantines and releases a lot; staff may not; an expired lot cannot change;
    a lot that does not exist is 404; a status other than the two is 422."""
    near = lots["NEAR"]
    staff, mgr = api.as_("staff"), api.as_("manager")
    r = staff.patch(f"/lots/{near}/status", json={"status": "quarantined"})
    assert r.status_code == 403, r.text
    r = mgr.patch(f"/lots/{near}/status", json={"status": "quarantined"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "quarantined"
    listed = mgr.get("/lots", params={"product": lots["product"], "status": "quarantined"})
    assert set(numbers(listed)) == {"NEAR", "QUAR"}
    r = mgr.patch(f"/lots/{near}/status", json={"status": "available"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "available"
    r = mgr.patch(f"/lots/{lots['PAST']}/status", json={"status": "quarantined"})
    assert r.status_code == 409 and error_code(r) == "lot_expired", r.text
    r = mgr.patch(f"/lots/{uuid.uuid4()}/status", json={"status": "quarantined"})
    assert r.status_code == 404, r.text
    r = mgr.patch(f"/lots/{near}/status", json={"status": "expired"})
    assert r.status_code == 422, r.text


def test_status_and_expiring_follow_the_organizations_date(
    database_url: str, proxy_url: str, jwt_secret: str
) -> None:
    """status= and expiring_within= judge a lot by its organization's date, as the SQL rules
    do: in a zone across midnight from UTC (UTC+14 or UTC-12, whichever is on another date
    now), a lot dated the earlier of the two dates is expired when the zone is ahead and still
    good (expiring today) when it is behind. Before, the filters used UTC's date."""
    world = build_world(database_url)
    now = dt.datetime.now(dt.UTC)
    zone = next(
        z for z in ("Etc/GMT-14", "Etc/GMT+12") if now.astimezone(ZoneInfo(z)).date() != now.date()
    )
    local = now.astimezone(ZoneInfo(zone)).date()
    edge = min(local, now.date())
    usable = edge >= local
    a = world.a
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into public.settings as s (organization_id, value)"
            " values (%(o)s, jsonb_build_object('timezone', %(z)s::text))"
            " on conflict (organization_id) do update"
            " set value = s.value || jsonb_build_object('timezone', %(z)s::text)",
            {"o": a.id, "z": zone},
        )
        product = make_product(conn, a.id, f"TZ-{uuid.uuid4().hex[:8]}")
        conn.commit()
        for number in ("EDGE", "LATER"):
            stock(
                conn,
                a.users["staff"],
                product,
                a.locations["WH1"],
                2,
                lot_number=number,
                expiry_date="2032-01-01",
            )
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")  # no scan: the date only
            conn.execute(
                "update public.lots set expiry_date = %s where product_id = %s"
                " and lot_number = 'EDGE'",
                (edge, product),
            )
    factory = Api(proxy_url, jwt_secret, world)
    viewer = factory.as_("viewer")
    try:
        listed = {
            name: set(numbers(viewer.get("/lots", params={"product": product, **params})))
            for name, params in (
                ("expired", {"status": "expired"}),
                ("available", {"status": "available"}),
                ("today", {"expiring_within": "0"}),
            )
        }
    finally:
        for client in factory.clients:
            client.close()
    if usable:
        assert listed == {"expired": set(), "available": {"EDGE", "LATER"}, "today": {"EDGE"}}
    else:
        assert listed == {"expired": {"EDGE"}, "available": {"LATER"}, "today": set()}
