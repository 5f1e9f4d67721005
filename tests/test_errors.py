"""The proxy's own answers: probes, unknown paths, oversized bodies, upstream down or slow."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from proxy.local.localstack import free_port
from tests.support.process import start_proxy


def test_health_has_no_dependencies(proxy_url) -> None:
    """/health answers 200 JSON."""
    resp = httpx.get(proxy_url + "/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_ready_reports_postgrest(proxy_url) -> None:
    """/ready is 200 with a postgrest check while PostgREST and the database answer."""
    resp = httpx.get(proxy_url + "/ready")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgrest"]["ok"] is True


def test_unknown_path_is_json_404(proxy_url) -> None:
    """An unknown path is a JSON 404 with the product's error shape and the request's id (an
    untrusted client's own X-Request-Id is replaced)."""
    resp = httpx.get(proxy_url + "/nope", headers={"X-Request-Id": "req-123"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert resp.json()["error"]["request_id"] == resp.headers["x-request-id"]
    assert resp.headers["x-request-id"] != "req-123"


def test_oversized_body_is_413_before_upstream(proxy_url, relay, token_for, new_user) -> None:
    """A body over NIMBUS_MAX_BODY_BYTES (64 KiB here) is 413 and never sent upstream."""
    before = relay.requests
    resp = httpx.post(
        proxy_url + "/rest/v1/test_items",
        headers={
            "Authorization": f"Bearer {token_for(new_user())}",
            "Content-Type": "application/json",
        },
        content=b'{"name": "' + b"x" * 70_000 + b'"}',
    )
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"
    assert relay.requests == before


def test_dot_segments_are_refused(proxy_url, relay, token_for, new_user) -> None:
    """`..` in the path cannot climb out of /rest/v1 upstream."""
    before = relay.requests
    for path in ("/rest/v1/../auth/v1/admin", "/rest/v1/%2e%2e/x"):
        resp = httpx.get(
            proxy_url + path, headers={"Authorization": f"Bearer {token_for(new_user())}"}
        )
        assert resp.status_code in (400, 404), path
        assert resp.headers["content-type"].startswith("application/json")
    assert relay.requests == before


@pytest.fixture
def silent_upstream():
    """A TCP server that accepts connections and never answers (a hung PostgREST)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_upstream_timeout_is_504(silent_upstream, jwt_secret, token_for, tmp_path) -> None:
    """A PostgREST that never answers gives a JSON 504 after the configured read timeout."""
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{silent_upstream}",
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_UPSTREAM_TIMEOUT_S="0.5",
    )
    try:
        resp = httpx.get(
            url + "/rest/v1/test_items",
            headers={
                "Authorization": f"Bearer {token_for('00000000-0000-0000-0000-000000000001')}"
            },
            timeout=10,
        )
        assert resp.status_code == 504
        assert resp.json()["code"] == "upstream_timeout"
        assert httpx.get(url + "/ready", timeout=10).status_code == 503
    finally:
        assert proc.stop() == 0


def test_upstream_down_is_503_with_retry_after(jwt_secret, token_for, tmp_path) -> None:
    """No PostgREST listening: JSON 503 with Retry-After, and /ready says not ready."""
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{free_port()}",
        NIMBUS_JWT_SECRET=jwt_secret,
    )
    try:
        resp = httpx.get(
            url + "/rest/v1/test_items",
            headers={
                "Authorization": f"Bearer {token_for('00000000-0000-0000-0000-000000000001')}"
            },
        )
        assert resp.status_code == 503
        assert resp.headers["retry-after"].isdigit()
        assert resp.json()["code"] == "upstream_unavailable"
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgrest"]["ok"] is False
    finally:
        assert proc.stop() == 0


def test_base_url_lists_the_surfaces(proxy_url) -> None:
    """GET / answers where the API, docs and probes are; /docs/ redirects to /docs."""
    body = httpx.get(proxy_url + "/").json()
    assert body["docs"] == "/docs"
    assert body["api"] == "/api/v1"
    assert httpx.get(proxy_url + "/docs/").headers["location"] == "/docs"
