"""Issue 16 point 3 through /api/v1: every analytics answer says per section whether it is live
or as of a refresh, and its days are the organization's (setting timezone)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import error_code
from tests.api.test_surface import ANALYTICS

ROUTES = [(f"/analytics/{path}", params) for path, params in ANALYTICS]
ROUTES.append(("/replenishment/suggestions", {}))


@pytest.mark.parametrize(("path", "params"), ROUTES)
def test_every_analytics_answer_labels_its_sections(api, path, params) -> None:
    """Each section is `live` or `as_of` a timestamp, names the keys it covers, and the answer's
    as_of is its oldest as_of section's."""
    r = api.as_("viewer").get(path, params=params)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    sections = data["sections"]
    assert sections and all(s["freshness"] in ("live", "as_of") for s in sections.values())
    assert all(s["keys"] and s["as_of"] for s in sections.values())
    snapshots = [
        dt.datetime.fromisoformat(s["as_of"])
        for s in sections.values()
        if s["freshness"] == "as_of"
    ]
    assert snapshots
    assert dt.datetime.fromisoformat(data["as_of"]) == min(snapshots)


def test_days_follow_the_organizations_time_zone(api) -> None:
    """After PUT /settings {timezone}, the default period ends today in that zone and answers
    name the zone; an unknown zone and the retired forecast_alpha are 422."""
    admin = api.as_("admin")
    try:
        for zone in ("Pacific/Auckland", "America/Los_Angeles"):
            put = admin.put("/settings", json={"timezone": zone})
            assert put.status_code == 200, put.text
            today = dt.datetime.now(ZoneInfo(zone)).date().isoformat()
            sales = api.as_("viewer").get("/analytics/sales").json()["data"]
            assert (sales["timezone"], sales["to"]) == (zone, today)
            turnover = api.as_("viewer").get("/analytics/inventory-turnover").json()["data"]
            assert (turnover["timezone"], turnover["to"]) == (zone, today)
            assert api.as_("viewer").get("/analytics/dashboard").json()["data"]["timezone"] == zone
        unknown = admin.put("/settings", json={"timezone": "Mars/Olympus"})
        assert unknown.status_code == 422 and error_code(unknown) == "validation_failed"
        retired = admin.put("/settings", json={"forecast_alpha": 0.2})
        assert retired.status_code == 422 and error_code(retired) == "validation_failed"
        assert admin.get("/settings").json()["data"]["value"] == {"timezone": "America/Los_Angeles"}
    finally:
        assert admin.put("/settings", json={}).status_code == 200
