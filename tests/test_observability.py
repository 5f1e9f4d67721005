"""Metrics, JSON access logs and request ids, on a proxy that trusts 127.0.0.1 as a proxy."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.support.process import start_proxy


@pytest.fixture(scope="module")
def observed(relay, postgrest, database_url, jwt_secret, tmp_path_factory):
    """A proxy process whose log we read, with 127.0.0.1 as a trusted proxy."""
    proc, url = start_proxy(
        tmp_path_factory.mktemp("observed"),
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
        NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_TRUSTED_PROXIES="127.0.0.1/32",
    )
    yield proc, url
    proc.stop()


def test_request_id_from_trusted_proxy_is_kept(observed, token_for) -> None:
    """A trusted proxy's X-Request-Id is echoed (and is the id in the access log)."""
    proc, url = observed
    rid = "lb-" + uuid.uuid4().hex
    resp = httpx.get(
        url + "/rest/v1/test_items?limit=1",
        headers={"X-Request-Id": rid, "Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"},
    )
    assert resp.headers["x-request-id"] == rid
    lines = [json.loads(line) for line in proc.log().splitlines() if rid in line]
    assert lines
    assert lines[-1]["route"] == "/rest/v1/{other}"  # test_items is not a product table
    assert lines[-1]["status"] == 200


def test_access_log_is_json_and_never_holds_a_token(observed, jwt_secret) -> None:
    """Every request logs one JSON line; tokens (valid or forged) never appear in the log."""
    from proxy.tokens import mint

    proc, url = observed
    token = mint(jwt_secret, sub=str(uuid.uuid4()))
    forged = token[:-4] + "AAAA"
    for t in (token, forged):
        httpx.get(url + "/rest/v1/test_items?limit=1", headers={"Authorization": f"Bearer {t}"})
        httpx.get(url + "/rest/v1/test_items?limit=1", headers={"apikey": t})
    log = proc.log()
    assert token not in log
    assert forged not in log
    assert jwt_secret not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "nimbus.access"]
    assert {"request_id", "method", "route", "status", "duration_ms", "subject"} <= set(access[-1])
    assert {r["status"] for r in access[-4:]} >= {200, 401}


def test_metrics_exposition(observed, token_for) -> None:
    """/metrics speaks Prometheus text with request, upstream, cache and JWT series."""
    _proc, url = observed
    httpx.get(url + "/rest/v1/test_items?limit=2", headers={"Authorization": "Bearer x"})
    ok = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    httpx.get(url + "/rest/v1/test_items?limit=2", headers=ok)
    httpx.get(url + "/rest/v1/test_items?limit=2", headers=ok)
    resp = httpx.get(url + "/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    for series in (
        "nimbus_http_request_duration_seconds_bucket",
        "nimbus_upstream_request_duration_seconds_count",
        'nimbus_jwt_rejections_total{reason="malformed"}',
        'nimbus_cache_requests_total{level="l1",result="hit"}',
        'nimbus_dependency_up{dependency="listener"} 1.0',
        "nimbus_http_requests_in_flight",
    ):
        assert series in text, series
