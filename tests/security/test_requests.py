"""Hostile requests: header tricks, hidden schemas, plans, oversized and deep inputs, unbounded
writes — each a clear 4xx within bounded time, nothing changed; tokens never in the logs."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest

from tests.security.conftest import fingerprint
from tests.support.process import start_proxy


def raw(url: str, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes to the proxy and return everything it answers before closing."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def test_crlf_injection_is_refused(stack, bearer, world) -> None:
    """A bare LF, a NUL or an obs-fold inside a header never smuggles a second header or request."""
    token = bearer(world.a.users["viewer"])["Authorization"]
    before = stack.relay.requests
    for trick in (
        b"X-Organization-Id: x\nAuthorization: Bearer forged\r\n",
        b"Accept: application/json\r\n Accept-Profile: private\r\n",
        b"Accept: a\x00b\r\n",
        b"Prefer: tx=commit\rX-Evil: 1\r\n",
    ):
        answer = raw(
            stack.url,
            b"GET /rest/v1/products?select=id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + b"Authorization: "
            + token.encode()
            + b"\r\n"
            + trick
            + b"\r\n",
        )
        assert 400 <= status_of(answer) < 500, answer[:300]
    assert stack.relay.requests == before


def test_oversized_headers_are_431_json(stack, client, bearer, world) -> None:
    """Headers above NIMBUS_MAX_HEADER_BYTES (16 KiB), a 20 KiB token: 431 in the JSON error shape
    of the path, nothing upstream, and neither the body nor the log quotes the offending bytes."""
    before = stack.relay.requests
    secretish = "eyJ" + "Q" * 20000
    r = client.get(
        "/rest/v1/products", headers={**bearer(world.a.users["viewer"]), "X-Pad": "a" * 20000}
    )
    assert r.status_code == 431, r.text
    # (the path is unknown when the head cannot be parsed: the product's shape everywhere)
    assert r.json()["error"]["code"] == "headers_too_large"
    r = client.get("/api/v1/products", headers={"Authorization": "Bearer " + secretish})
    assert r.status_code == 431, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "headers_too_large"
    assert "QQQQ" not in r.text
    assert "QQQQ" not in stack.proc.log()
    assert stack.relay.requests == before


def test_malformed_requests_get_json_400(stack) -> None:
    """Unparseable request lines and headers: aiohttp's parser refuses them, the proxy answers in
    JSON (not aiohttp's plain text)."""
    for bad in (
        b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /api/v1/products HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    ):
        answer = raw(stack.url, bad)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert status_of(answer) == 400, answer[:300]
        assert b"application/json" in head.lower(), head
        assert orjson.loads(body)["error"]["code"] == "bad_request"
    assert "hit path failed" not in stack.proc.log()  # parse errors never reach the hit path


def test_duplicated_authorization_is_refused(stack, client, bearer, world) -> None:
    """Two Authorization headers (valid + forged, or two users) -> 401, never the first or last."""
    good = bearer(world.a.users["viewer"])["Authorization"]
    other = bearer(world.b.users["owner"])["Authorization"]
    before = stack.relay.requests
    for second in ("Bearer forged.token.here", other, good):
        headers = httpx.Headers([("Authorization", good), ("Authorization", second)])
        r = client.get("/rest/v1/products?select=id", headers=headers)
        assert r.status_code == 401, (second[:20], r.status_code, r.text)
    assert stack.relay.requests == before


@pytest.mark.parametrize(
    "profile", ["private", "auth", "pg_catalog", "information_schema", "extensions"]
)
def test_hidden_schema_profiles_are_4xx(client, bearer, world, profile) -> None:
    """Accept-Profile / Content-Profile naming a schema other than public: 4xx, no rows."""
    auth = bearer(world.a.users["owner"])
    r = client.get("/rest/v1/users", headers={**auth, "Accept-Profile": profile})
    assert 400 <= r.status_code < 500, r.text
    r = client.post("/rest/v1/rpc/x", json={}, headers={**auth, "Content-Profile": profile})
    assert 400 <= r.status_code < 500, r.text


def test_plan_media_type_is_4xx(client, bearer, world) -> None:
    """Accept: application/vnd.pgrst.plan (EXPLAIN output) is refused."""
    auth = bearer(world.a.users["owner"])
    for accept in (
        "application/vnd.pgrst.plan",
        'application/vnd.pgrst.plan+json; for="application/json"; options=analyze',
    ):
        r = client.get("/rest/v1/products", headers={**auth, "Accept": accept})
        assert 400 <= r.status_code < 500, r.text
        assert "Plan" not in r.text and "Seq Scan" not in r.text


def test_spoofed_forwarded_for_does_not_bypass_rate_limits(
    postgrest, database_url, jwt_secret, tmp_path
) -> None:
    """With no trusted proxy configured, rotating X-Forwarded-For still spends one client budget."""
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_RATE_LIMIT_AUTH="5/60",
    )
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            codes = [
                c.get(
                    "/rest/v1/products",
                    headers={
                        "Authorization": "Bearer bad",
                        "X-Forwarded-For": f"10.0.{i}.1",
                        "X-Real-IP": f"10.1.{i}.1",
                    },
                ).status_code
                for i in range(12)
            ]
    finally:
        proc.stop()
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 7, codes


def test_limit_above_maximum(client, bearer, world) -> None:
    """/api/v1 limit > 100 is 422; /rest/v1 never returns more than db-max-rows (1000)."""
    auth = bearer(world.a.users["owner"])
    assert client.get("/api/v1/products", params={"limit": 101}, headers=auth).status_code == 422
    assert client.get("/api/v1/products", params={"limit": 10**12}, headers=auth).status_code == 422
    r = client.get(
        "/rest/v1/stock_movements", params={"select": "id", "limit": 10**9}, headers=auth
    )
    assert r.status_code in (200, 206, 400) and (r.status_code == 400 or len(r.json()) <= 1000)


def test_count_exact_is_bounded(client, bearer, world) -> None:
    """Prefer: count=exact on the largest table answers within the statement timeout bound."""
    auth = {**bearer(world.a.users["owner"]), "Prefer": "count=exact"}
    start = time.monotonic()
    r = client.get("/rest/v1/stock_movements", params={"select": "id", "limit": 1}, headers=auth)
    assert r.status_code in (200, 206) and time.monotonic() - start < 10
    assert "/" in r.headers["content-range"]


def test_huge_or_filter_and_deep_json_are_4xx(stack, client, bearer, world, database_url) -> None:
    """A 60 KiB or= filter (over the line limit), 100k-deep JSON: 4xx, bounded, nothing changed."""
    auth = bearer(world.a.users["owner"])
    before = fingerprint(database_url, world.a.id)
    huge = "(" + ",".join(f"sku.eq.x{i}" for i in range(6000)) + ")"
    start = time.monotonic()
    answer = raw(
        stack.url,
        f"GET /rest/v1/products?or={huge} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {auth['Authorization']}\r\n\r\n".encode(),
    )
    assert 400 <= status_of(answer) < 500 and time.monotonic() - start < 10, answer[:300]
    medium = "(" + ",".join(f"sku.eq.x{i}" for i in range(500)) + ")"
    r = client.get("/rest/v1/products", params={"or": medium, "select": "id"}, headers=auth)
    assert r.status_code == 200 and r.json() == []
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/rest/v1/products", "/rest/v1/rpc/create_order", "/api/v1/products"):
        start = time.monotonic()
        r = client.post(path, content=deep, headers={**auth, "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        assert time.monotonic() - start < 10
    assert fingerprint(database_url, world.a.id) == before


def test_body_one_byte_over_the_limit_is_413(stack, client, bearer, world) -> None:
    """1 MiB + 1 byte (NIMBUS_MAX_BODY_BYTES default) -> 413 JSON on both surfaces, not upstream."""
    auth = {**bearer(world.a.users["owner"]), "Content-Type": "application/json"}
    body = b'"' + b"a" * (1_048_576 - 1) + b'"'
    before = stack.relay.requests
    for path in ("/rest/v1/products", "/api/v1/products"):
        r = client.post(path, content=body, headers=auth)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
    assert stack.relay.requests == before


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_unfiltered_patch_delete_is_refused(
    stack, client, bearer, world, database_url, method
) -> None:
    """PATCH/DELETE on /rest/v1 without any filter: 400 JSON, never upstream, nothing changed."""
    auth = bearer(world.a.users["owner"])
    before = fingerprint(database_url, world.a.id)
    upstream = stack.relay.requests
    for params in ({}, {"select": "id"}, {"limit": "10", "order": "id"}, {"columns": "name"}):
        r = client.request(
            method,
            "/rest/v1/products",
            params=params,
            headers=auth,
            json={"price": 0} if method == "PATCH" else None,
        )
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert r.json()["code"] == "PGRST_UNFILTERED"
    assert stack.relay.requests == upstream
    r = client.request(
        method,
        "/rest/v1/products",
        params={"id": "eq." + world.a.products["P3"], "select": "id"},
        headers=auth,
        json={"price": 11} if method == "PATCH" else None,
    )
    assert r.status_code != 400, r.text  # a filtered write still reaches PostgREST
    after = fingerprint(database_url, world.a.id)
    assert after["stock_levels"] == before["stock_levels"]


def test_tokens_and_secrets_never_in_logs(stack, client, bearer, world, jwt_secret) -> None:
    """After the battery's traffic (good and bad tokens), the proxy log holds no token or secret."""
    good = bearer(world.a.users["viewer"])["Authorization"].split()[1]
    client.get("/rest/v1/products?select=id", headers={"Authorization": "Bearer " + good})
    client.get("/rest/v1/products?select=id", headers={"Authorization": "Bearer " + good + "x"})
    client.get("/rest/v1/products?select=id", headers={"apikey": good[:-3]})
    log = stack.proc.log()
    assert log.strip(), "the proxy logged nothing at all"
    assert jwt_secret not in log
    assert good.split(".")[2] not in log and good.split(".")[1] not in log
    assert "eyJ" not in log  # no JWT-looking string of any token the battery sent
