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


def exchange(url: str, requests: list[bytes]) -> list[bytes]:
    """Send requests on one keep-alive connection (the last one closes it); each answer, in
    order. A token the proxy knows takes the fast paths (proxy/edge) from the second request
    on a connection that stays open; the first request of a new token, the full path."""
    body = b"".join(requests[:-1]) + requests[-1].replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1
    )
    answer = raw(url, body)
    parts = [b"HTTP/1.1 " + part for part in answer.split(b"HTTP/1.1 ")[1:]]
    assert len(parts) == len(requests), answer[:600]
    return parts


def get(target: str, token: str, *extra: bytes) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n".encode()
        + b"".join(line + b"\r\n" for line in extra)
        + b"\r\n"
    )


def test_a_fragment_in_the_target_is_refused(stack, client, bearer, world) -> None:
    """`?id=eq.X&offset=0#&select=sku,stock_levels(on_hand)`: the proxy's parser ends the query
    at `#`, PostgREST read past it, so the answer (with stock) was cached under the key of
    `?id=eq.X&offset=0`, depending on products only, and stayed a HIT after stock changed
    (found by a hostile probe). A fragment is no part of a request target: 400 on every path,
    and never an answer of the fragment-less key."""
    headers = bearer(world.a.users["viewer"])
    token = headers["Authorization"]
    target = f"/rest/v1/products?id=eq.{world.a.products['P1']}&offset=0"
    assert client.get(target, headers=headers).status_code == 200  # cached: a HIT from now on
    before = stack.relay.requests
    poisoned = get(target + "#&select=sku,stock_levels(on_hand)", token)
    for answer in exchange(stack.url, [poisoned, poisoned, poisoned]):
        assert status_of(answer) == 400, answer[:300]
        assert b"PGRST100" in answer and b"stock_levels" not in answer
    assert stack.relay.requests == before


def test_an_absolute_form_target_is_served_like_its_origin_form(stack, client, bearer, world):
    """`GET http://host/rest/v1/... HTTP/1.1` (absolute form, which HTTP/1.1 servers must
    accept) was sent upstream as `/27.0.0.1:port/rest/v1/...` and answered 404 on a miss."""
    headers = bearer(world.a.users["viewer"])
    token = headers["Authorization"]
    path = "/rest/v1/products?select=id,sku&order=sku&limit=1&offset=1"
    expected = client.get(path, headers={**headers, "Cache-Control": "no-cache"})
    absolute = get(stack.url + path.replace("offset=1", "offset=01"), token)  # a new key: a miss
    for answer in exchange(stack.url, [absolute, absolute]):
        assert status_of(answer) == 200, answer[:300]
        assert answer.endswith(expected.content)


@pytest.mark.parametrize(
    ("method", "target", "header", "expected"),
    [
        (
            "GET",
            "/rest/v1/products?select=id&limit=1",
            b"X-Client-Info: supabase-js/2 \xe2\x82\xac",
            200,
        ),
        (
            "GET",
            "/rest/v1/products?select=id&limit=1&offset=1",
            b"Prefer: timezone=Europe/Z\xc3\xbcrich",
            200,
        ),
        ("GET", "/rest/v1/products?select=id&limit=1&offset=2", b"Prefer: count=\xff", 400),
        (
            "GET",
            "/rest/v1/products?select=id&limit=1&offset=3",
            b"Accept: application/json\xff",
            400,
        ),
        ("POST", "/rest/v1/rpc/lookup_product", b"Accept: application/json\xff", 400),
        ("POST", "/rest/v1/rpc/lookup_product", b"X-Client-Info: \xc3\xa9t\xc3\xa9", 200),
    ],
)
def test_non_ascii_header_values_are_answered_never_500(
    stack, bearer, world, method, target, header, expected
):
    """Header values in UTF-8 or not UTF-8 at all (a client's name, a time zone, garbage): the
    proxy encoded what it forwards as Latin-1 and its cache keys as strict UTF-8, so these were
    a 500 with a traceback on the full path and a connection closed unanswered on the relay
    path. UTF-8 passes byte for byte (PostgREST answers as it does directly); a value that is
    not UTF-8 is a 400 that never reaches PostgREST — on every path alike."""
    token = bearer(world.a.users["viewer"])["Authorization"]
    if method == "GET":
        request = get(target, token, header)
    else:
        body = b'{"code": "zzz"}'
        request = (
            f"POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
            + header
            + b"\r\n\r\n"
            + body
        )
    before = stack.relay.requests
    answers = exchange(stack.url, [request, request, request])
    assert [status_of(answer) for answer in answers] == [expected] * 3, answers[0][:400]
    if expected == 400:
        assert stack.relay.requests == before


def test_a_cached_answer_does_not_change_what_a_bad_header_gets(stack, bearer, world) -> None:
    """A forwarded header that is not UTF-8 and not part of the cache key (X-Client-Info): a 400
    on a miss, and a 400 too when the entry is cached (the hit paths answered it 200)."""
    token = bearer(world.a.users["viewer"])["Authorization"]
    path = "/rest/v1/products?select=id&order=id&limit=1&offset=3"
    primed = exchange(stack.url, [get(path, token), get(path, token)])
    assert [status_of(answer) for answer in primed] == [200, 200]
    assert b"X-Cache: HIT" in primed[1]  # the same request but for the bad header: a hit
    bad = get(path, token, b"X-Client-Info: \xff")
    statuses = [status_of(answer) for answer in exchange(stack.url, [bad, bad, bad])]
    assert statuses == [400, 400, 400], statuses


def test_every_value_of_a_repeated_header_keys_the_cache(client, bearer, world) -> None:
    """Two Prefer headers (both forwarded, both honoured by PostgREST) were keyed by the first
    alone: the answer with an exact count was then served to a request that asked for none."""
    headers = bearer(world.a.users["viewer"])
    path = "/rest/v1/products?select=id&order=id&limit=2&offset=1"
    counted = client.get(
        path, headers=[*headers.items(), ("Prefer", "timezone=UTC"), ("Prefer", "count=exact")]
    )
    assert counted.headers["content-range"].split("/")[1] != "*"
    plain = client.get(path, headers=[*headers.items(), ("Prefer", "timezone=UTC")])
    assert plain.headers["content-range"].endswith("/*"), plain.headers.get("x-cache")


def test_a_weak_validator_matches_for_if_none_match(stack, bearer, world) -> None:
    """If-None-Match compares weakly (RFC 9110 13.1.2): `W/"tag"` matches the entry's `"tag"`,
    a 304 on every path — not a full 200."""
    token = bearer(world.a.users["viewer"])["Authorization"]
    path = "/rest/v1/products?select=id&order=id&limit=3&offset=2"
    first = exchange(stack.url, [get(path, token)])[0]
    etag = next(
        line.split(b":", 1)[1].strip()
        for line in first.split(b"\r\n")
        if line.lower().startswith(b"etag:")
    )
    conditional = get(path, token, b"If-None-Match: W/" + etag)
    for answer in exchange(stack.url, [conditional, conditional]):
        assert status_of(answer) == 304, answer[:300]
