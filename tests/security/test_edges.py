"""The small holes of issue 13 (point 6), each tried on every request path that could take it:
the full path (`stack`, cached: its hit path answers nothing new), the relay path (`plain`, no
cache), and a proxy with tight limits (`limited`)."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Iterator

import httpx
import orjson
import pytest

from proxy.gate.tokens import mint
from tests.support.process import Proc, start_proxy
from tests.support.wait import wait_until

REST_ERROR_KEYS = {"code", "message", "details", "hint"}
UPSTREAM_ERRORS = re.compile(r"^nimbus_upstream_errors_total\{[^}]*\} (\S+)$", re.M)


@pytest.fixture(scope="module")
def plain(upstream_env, tmp_path_factory) -> Iterator[Proc]:
    """A proxy without a cache (GETs take the relay path), upstream through the counting relay."""
    proc, _ = start_proxy(
        tmp_path_factory.mktemp("edges-plain"), **upstream_env, NIMBUS_CACHE_ENABLED="false"
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def limited(upstream_env, tmp_path_factory) -> Iterator[Proc]:
    """A proxy with 5 reads and 5 failed authentications per client address per 10 minutes."""
    proc, _ = start_proxy(
        tmp_path_factory.mktemp("edges-limited"),
        **upstream_env,
        NIMBUS_RATE_LIMIT_READ="5/600",
        NIMBUS_RATE_LIMIT_AUTH="5/600",
    )
    yield proc
    proc.stop()


def upstream_errors(url: str) -> float:
    """The sum of nimbus_upstream_errors_total over every kind."""
    text = httpx.get(url + "/metrics").text
    return sum(float(v) for v in UPSTREAM_ERRORS.findall(text))


def viewer(jwt_secret: str, world) -> dict[str, str]:
    """A fresh token of organization a's viewer."""
    return {"Authorization": "Bearer " + mint(jwt_secret, sub=world.a.users["viewer"])}


def both(stack, plain) -> list[tuple[str, object]]:
    """(base URL, the relay counting what it sends upstream) of the cached and uncached proxy."""
    return [(stack.url, stack.relay), (plain.url, None)]


def assert_refused(answer: httpx.Response, surface: str) -> None:
    """A 400 in the surface's error shape (PostgREST's on /rest/v1, the API's on /api/v1)."""
    assert answer.status_code == 400, (answer.request.url, answer.status_code, answer.text)
    body = answer.json()
    if surface == "rest":
        assert set(body) == REST_ERROR_KEYS, body
    else:
        assert body["error"]["code"] == "bad_request", body
        assert body["error"]["request_id"] == answer.headers["X-Request-Id"]


def _bad_targets(byte_seq: str) -> list[tuple[str, str, str]]:
    return [
        ("GET", f"/rest/v1/products{byte_seq}", "rest"),
        ("GET", f"/rest/v1/products?name=eq.a{byte_seq}", "rest"),
        ("GET", f"/rest/v1/products?select=id{byte_seq}", "rest"),
        ("HEAD", f"/rest/v1/products?name=eq.{byte_seq}", "rest"),
        ("POST", f"/rest/v1/rpc/test_total_qty{byte_seq}", "rest"),
        ("PATCH", f"/rest/v1/test_items?name=eq.{byte_seq}", "rest"),
        ("GET", f"/api/v1/products{byte_seq}", "api"),
        ("GET", f"/api/v1/products?search=a{byte_seq}", "api"),
    ]


def _try_bad(stack, plain, relay, jwt_secret, world, byte_seq: str) -> None:
    # Each proxy looks up the viewer's organizations once (the per-organization cache scope);
    # a first read does it, so that what is counted below is only what the bad requests send.
    for url, _ in both(stack, plain):
        warm = f"/rest/v1/products?select=id&limit=1&name=neq.{secrets.token_hex(4)}"
        assert httpx.get(url + warm, headers=viewer(jwt_secret, world)).status_code == 200
    before_relay, before_stack = relay.requests, stack.relay.requests
    for url, _ in both(stack, plain):
        before_errors = upstream_errors(url)
        with httpx.Client(base_url=url, headers=viewer(jwt_secret, world), timeout=10) as c:
            for method, target, surface in _bad_targets(byte_seq):
                body = b"{}" if method in ("POST", "PATCH") else None
                answer = c.request(method, target, content=body)
                if method == "HEAD":
                    assert answer.status_code == 400, target
                else:
                    assert_refused(answer, surface)
            # PostgREST still answers (a URL of its own: never a cache hit of an earlier test)
            good = f"/rest/v1/products?select=id&limit=1&name=neq.{secrets.token_hex(4)}"
            assert c.get(good).status_code == 200
        assert upstream_errors(url) == before_errors
        assert httpx.get(url + "/ready").status_code == 200
    assert relay.requests == before_relay + 1  # only the one good read of `plain`
    assert stack.relay.requests == before_stack + 1  # only the good read of `stack`


def test_nul_in_path_is_400_not_upstream_failure(stack, plain, relay, jwt_secret, world) -> None:
    """%00 in a path or query: 400 in the surface's shape on every request path, nothing sent
    upstream, PostgREST not reported unavailable (no 503, upstream error metric unchanged)."""
    _try_bad(stack, plain, relay, jwt_secret, world, "%00")


def test_invalid_utf8_query_is_400(stack, plain, relay, jwt_secret, world) -> None:
    """%ff%fe (and an overlong NUL, %c0%80) in a path or query: 400 in the surface's shape,
    never PostgREST's 500 passed through, nothing sent upstream."""
    for seq in ("%ff%fe", "%c0%80"):
        _try_bad(stack, plain, relay, jwt_secret, world, seq)


def test_postgrest_500_logged_and_shaped(stack, plain, jwt_secret, world) -> None:
    """A PostgREST 500 (an internal error in SQL) is answered in the proxy's shape without
    PostgreSQL's message, on the relay and the full path, and logged with its request id."""
    for url, proc in ((stack.url, stack.proc), (plain.url, plain)):
        with httpx.Client(base_url=url, headers=viewer(jwt_secret, world), timeout=10) as c:
            for answer in (
                c.get("/rest/v1/rpc/test_internal_error"),
                c.post("/rest/v1/rpc/test_internal_error", json={}),
            ):
                assert answer.status_code == 500, answer.text
                body = answer.json()
                assert set(body) == REST_ERROR_KEYS, body
                assert body["code"] == "upstream_error"
                assert "10.9.8.7" not in answer.text and "cache lookup" not in answer.text
                request_id = answer.headers["X-Request-Id"]
                wait_until(
                    lambda rid=request_id, p=proc: _logged_500(p.log(), rid),
                    timeout=5,
                    what="the 500 in the log",
                )


def _logged_500(log: str, request_id: str) -> bool:
    for line in log.splitlines():
        if request_id in line and "postgrest answered 500" in line:
            entry = orjson.loads(line)
            return entry["level"] == "error" and "exc" not in entry
    return False


def test_root_document_hides_internal_address(stack, plain, postgrest, anon_key) -> None:
    """`GET /rest/v1/` (PostgREST's OpenAPI) with the anon key names no internal host or port:
    `host` is gone and `basePath` is the proxy's /rest/v1, on both request paths."""
    internal = {postgrest.url.rsplit(":", 1)[1], str(stack.relay.port)}
    for url, _ in both(stack, plain):
        for target in ("/rest/v1/", "/rest/v1"):
            for _ in range(2):  # the second may be a cache hit
                answer = httpx.get(url + target, headers={"apikey": anon_key}, timeout=10)
                assert answer.status_code == 200, answer.text
                doc = answer.json()
                assert "swagger" in doc or "openapi" in doc
                assert "host" not in doc
                assert doc.get("basePath", "/rest/v1") == "/rest/v1"
                assert all(s["url"] == "/rest/v1" for s in doc.get("servers", []))
                assert "127.0.0.1" not in answer.text
                for port in internal:
                    assert f":{port}" not in answer.text


def test_preflight_rate_limited(limited, relay) -> None:
    """CORS preflights spend the client address's read budget (5 here): the 6th is a 429 and
    never reaches PostgREST."""
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    before = relay.requests
    with httpx.Client(base_url=limited.url, timeout=10) as c:
        statuses = [c.options("/rest/v1/products", headers=headers).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5, statuses
    assert statuses[5] == 429
    assert relay.requests == before + 5


def test_revoked_token_spends_budget(limited, jwt_secret, world, relay) -> None:
    """A revoked session's token costs the sender's `auth` budget (5 here), like a forged one:
    401 five times, then 429; nothing reaches PostgREST."""
    token = mint(jwt_secret, sub=world.a.users["staff"])
    headers = {"Authorization": "Bearer " + token}
    with httpx.Client(base_url=limited.url, headers=headers, timeout=10) as c:
        assert c.post("/api/v1/auth/logout").status_code == 200
        before = relay.requests
        statuses = [c.get("/rest/v1/products?select=id").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429], statuses
    assert relay.requests == before


def test_client_abort_logs_info(plain, jwt_secret, world) -> None:
    """A client that promises a body and leaves halfway is one INFO line naming the request,
    never an ERROR or a traceback."""
    token = mint(jwt_secret, sub=world.a.users["staff"])
    host, port = plain.url.removeprefix("http://").split(":")
    mark = len(plain.log())
    for path in ("/rest/v1/test_items", "/api/v1/products"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                '{"name": "half'.encode()
            )
    wait_until(
        lambda: plain.log()[mark:].count("client went away") >= 2, timeout=5, what="abort lines"
    )
    tail = plain.log()[mark:]
    lines = [orjson.loads(line) for line in tail.splitlines() if line.startswith("{")]
    aborts = [e for e in lines if "client went away" in e.get("message", "")]
    assert len(aborts) == 2 and {e["level"] for e in aborts} == {"info"}, aborts
    assert not [e for e in lines if e["level"] in ("error", "critical") or "exc" in e], tail
    assert "Traceback" not in tail


def test_realtime_bad_tokens_spend_the_auth_budget(upstream_env, jwt_secret, world, tmp_path):
    """A Realtime socket with a forged or missing apikey is a failed attempt like an HTTP
    request's (3 here per client address): 401 until the budget is spent, then 429 with
    Retry-After, and HTTP from the same address is refused as well (one budget)."""
    proc, url = start_proxy(tmp_path, **upstream_env, NIMBUS_RATE_LIMIT_AUTH="3/600")
    forged = mint("not-the-secret-" * 4, sub=world.a.users["viewer"])
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            socket_url = "/realtime/v1/websocket"
            answers = [
                c.get(socket_url, params={"apikey": forged, "vsn": "1.0.0"}),
                c.get(socket_url, params={"vsn": "1.0.0"}),  # no apikey at all
                c.get(socket_url, params={"apikey": forged, "vsn": "1.0.0"}),
                c.get(socket_url, params={"apikey": forged, "vsn": "1.0.0"}),
            ]
            assert [a.status_code for a in answers] == [401, 401, 401, 429], answers
            assert int(answers[-1].headers["Retry-After"]) >= 1
            assert answers[-1].json()["error"]["code"] == "rate_limited", answers[-1].text
            spent = c.get("/rest/v1/products", headers={"Authorization": "Bearer " + forged})
            assert spent.status_code == 429, spent.text
    finally:
        proc.stop()
