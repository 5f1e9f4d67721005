"""The hit path (proxy/edge/hitpath.py, proxy/edge/protocol.py): L1 hits answered by the protocol
handler must be the answers the full aiohttp path gives, in order, and only when every check says
yes.

Two proxy processes on the same PostgREST and Redis: one with the hit path, one without
(NIMBUS_HIT_PATH=false). Keep-alive clients throughout."""

from __future__ import annotations

import re
import secrets
import socket
import time

import httpx
import jwt
import pytest

from tests.support.process import start_proxy
from tests.support.redis_server import SHARED_REDIS, own_prefix
from tests.support.wait import wait_until

PER_RESPONSE = {"date", "x-request-id", "ratelimit"}
PATH = "/rest/v1/test_items?select=id,name,qty&order=id&limit=5"


def hit_path_count(base: str) -> float:
    """nimbus_hit_path_responses_total of one proxy process."""
    text = httpx.get(base + "/metrics").text
    found = re.search(r"^nimbus_hit_path_responses_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def comparable(response: httpx.Response) -> list[tuple[str, str]]:
    """Headers that must be equal between two answers to the same request (not the per-response
    ones: Date, X-Request-Id, and RateLimit, whose remaining count moves)."""
    return sorted((k, v) for k, v in response.headers.items() if k not in PER_RESPONSE)


@pytest.fixture(scope="module")
def pair(upstream_env, tmp_path_factory):
    """{"on": url, "off": url}: the same proxy with and without the hit path."""
    with own_prefix("hitpath") as prefix:
        procs, urls = [], {}
        for name, flag in (("on", "true"), ("off", "false")):
            proc, url = start_proxy(
                tmp_path_factory.mktemp(f"hitpath-{name}"),
                **upstream_env,
                NIMBUS_REDIS_URL=SHARED_REDIS,
                NIMBUS_REDIS_PREFIX=prefix,
                NIMBUS_HIT_PATH=flag,
                NIMBUS_JWT_LEEWAY_S="0",
            )
            procs.append(proc)
            urls[name] = url
        for url in urls.values():
            wait_until(
                lambda u=url: httpx.get(u + "/ready").json()["checks"]["cache"]["coherent"],
                what="cache coherence",
            )
        yield urls
        for proc in procs:
            proc.stop()


def answered(base: str, send, hit_path: bool) -> httpx.Response:
    """send() on a warm connection; the answer came from the path asked for. A hit may rightly
    go the full way once: when the process's rate-limit lease for the caller has expired (it
    lives a second; a slow machine can take that long between two requests), only the full
    path can renew it — then the next identical request is a hit-path one."""
    for attempt in range(2 if hit_path else 1):
        before = hit_path_count(base)
        response = send()
        took = hit_path_count(base) - before
        if took == (1 if hit_path else 0):
            return response
        assert took == 0 and attempt == 0, took
    raise AssertionError("the hit path did not answer")


def test_hits_answer_like_the_full_path(pair, auth) -> None:
    """GET, HEAD and a matching If-None-Match: status, headers and body equal to the full path's
    (Date, X-Request-Id and the RateLimit count aside)."""
    answers = {}
    for name, base in pair.items():
        with httpx.Client(base_url=base, headers=auth) as c:
            assert c.get(PATH).headers["x-cache"] in ("MISS", "HIT")
            # right after that full-path answer, on the same connection:
            etag = answered(base, lambda c=c: c.get(PATH), hit_path=name == "on").headers["etag"]
            answers[name] = [
                answered(base, send, hit_path=name == "on")
                for send in (
                    lambda: c.get(PATH),
                    lambda: c.head(PATH),
                    lambda c=c, etag=etag: c.get(PATH, headers={"If-None-Match": etag}),
                )
            ]
        assert [r.headers["x-cache"] for r in answers[name]] == ["HIT"] * 3
        assert [r.status_code for r in answers[name]] == [200, 200, 304]
        for r in answers[name]:
            assert r.headers["ratelimit-policy"].startswith('"read"')
            assert re.fullmatch(r'"read";r=\d+;t=\d+', r.headers["ratelimit"])
            assert r.headers["x-request-id"]
    for on, off in zip(answers["on"], answers["off"], strict=True):
        assert on.status_code == off.status_code
        assert comparable(on) == comparable(off)
        assert on.content == off.content
    assert answers["on"][0].content and answers["on"][1].content == b""


def test_api_hits_answer_like_the_full_path(pair, database_url, jwt_secret) -> None:
    """/api/v1 GETs (a list, one row, an analytics document), and with the organization header:
    hits from the hit path equal the full path's; HEAD (no /api/v1 route has one) stays a 405."""
    from proxy.gate.tokens import mint
    from tests.support.domain import build_world

    org = build_world(database_url).a
    auth = {"Authorization": "Bearer " + mint(jwt_secret, sub=org.users["owner"], org=org.id)}
    product = next(iter(org.products.values()))
    paths = [
        ("/api/v1/products?limit=3&sort=name", {}),
        (f"/api/v1/products/{product}", {}),
        ("/api/v1/analytics/valuation", {}),
        ("/api/v1/locations", {"X-Organization-Id": org.id}),
    ]
    for path, extra in paths:
        answers = {}
        for name, base in pair.items():
            with httpx.Client(base_url=base, headers={**auth, **extra}) as c:
                assert c.get(path).status_code == 200, c.get(path).text
                answers[name] = answered(base, lambda c=c, p=path: c.get(p), hit_path=name == "on")
                head = answered(base, lambda c=c, p=path: c.head(p), hit_path=False)
                assert head.status_code == 405
        on, off = answers["on"], answers["off"]
        assert on.headers["x-cache"] == off.headers["x-cache"] == "HIT", path
        assert comparable(on) == comparable(off), path
        assert on.content == off.content, path


def test_requests_the_full_path_refuses_are_never_hits(pair, database_url, jwt_secret) -> None:
    """With the entry in L1 and a warm connection, what the full path answers differently still
    goes there: an unknown expectation (417), an empty organization header (422, not the
    answer cached for no header), a memoised token once it expired (401; no JWT leeway here)."""
    from proxy.gate.tokens import mint
    from tests.support.domain import build_world

    org = build_world(database_url).b
    auth = {"Authorization": "Bearer " + mint(jwt_secret, sub=org.users["owner"], org=org.id)}
    base = pair["on"]
    with httpx.Client(base_url=base, headers=auth) as c:
        assert c.get(PATH).status_code == 200
        assert c.get("/api/v1/locations").status_code == 200
        assert answered(base, lambda: c.get(PATH), hit_path=True).headers["x-cache"] == "HIT"
        expect = answered(base, lambda: c.get(PATH, headers={"Expect": "foo"}), hit_path=False)
        assert expect.status_code == 417
        empty = answered(
            base,
            lambda: c.get("/api/v1/locations", headers={"X-Organization-Id": ""}),
            hit_path=False,
        )
        assert empty.status_code == 422, empty.text
        # A token the hit path has served (so it sits in the verifier's memo), once expired.
        short = mint(jwt_secret, sub=org.users["owner"], org=org.id, ttl=2)
        bearer = {"Authorization": "Bearer " + short}
        assert c.get(PATH, headers=bearer).status_code == 200
        assert answered(base, lambda: c.get(PATH, headers=bearer), hit_path=True).status_code == 200
        exp = jwt.decode(short, options={"verify_signature": False})["exp"]
        wait_until(lambda: time.time() > exp + 0.05, timeout=5, what="the token to expire")
        late = answered(base, lambda: c.get(PATH, headers=bearer), hit_path=False)
        assert late.status_code == 401


def raw_exchange(base: str, data: bytes, count: int) -> list[tuple[int, dict, bytes]]:
    """Send data on one connection; read `count` responses (status, headers, body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        buffer = b""
        answers = []
        while len(answers) < count:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(answers)} answers"
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            headers = {k.lower(): v for k, v in headers.items()}
            length = int(headers.get("content-length", 0))
            while len(buffer) < length:
                chunk = sock.recv(65536)
                assert chunk, "connection closed mid-body"
                buffer += chunk
            answers.append((int(lines[0].split()[1]), headers, buffer[:length]))
            buffer = buffer[length:]
        return answers


def test_pipelined_requests_keep_their_order(pair, auth) -> None:
    """One write carrying hit, miss, hit, 401, hit: five answers in request order (a hit queued
    behind a request on the full path waits for it)."""
    base = pair["on"]
    other = PATH.replace("limit=5", "limit=2")
    with httpx.Client(base_url=base, headers=auth) as c:
        c.get(PATH)
    token = auth["Authorization"]

    def request(path: str, authorization: str = token) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n\r\n"
        ).encode()

    first = raw_exchange(base, request(PATH), 1)  # a connection's first request: full path
    data = (
        request(PATH)
        + request(PATH)
        + request(other)
        + request(PATH)
        + request(PATH, "Bearer not.a.token")
        + request(PATH)
    )
    answers = raw_exchange(base, data, 6)
    assert [(s, h.get("x-cache")) for s, h, _ in answers] == [
        (200, "HIT"),
        (200, "HIT"),
        (200, "MISS"),
        (200, "HIT"),
        (401, None),
        (200, "HIT"),
    ]
    bodies = {b for s, h, b in answers if s == 200 and h["x-cache"] == "HIT"}
    assert bodies == {first[0][2]}
    assert len(answers[2][2]) < len(first[0][2])  # the limit=2 answer, in its place


def test_hits_stop_at_once_on_a_write_and_a_revocation(pair, jwt_secret, new_user) -> None:
    """After a write through the proxy the next read on a warm connection is a MISS with the new
    row; after logout the same token on a warm connection is 401 (never an L1 hit)."""
    from proxy.gate.tokens import mint

    uid = new_user()
    token = mint(jwt_secret, sub=uid)  # with a session_id, which logout revokes
    headers = {"Authorization": f"Bearer {token}"}
    base = pair["on"]
    with httpx.Client(base_url=base, headers=headers) as c:
        c.get(PATH)
        assert c.get(PATH).headers["x-cache"] == "HIT"
        name = "hit-path-" + secrets.token_hex(4)
        created = c.post("/rest/v1/test_items", json={"name": name, "qty": 1})
        assert created.status_code == 201, created.text
        again = c.get("/rest/v1/test_items?select=id,name,qty&order=id.desc&limit=5")
        assert name in again.text
        after = c.get(PATH)
        assert after.headers["x-cache"] == "MISS"
        assert c.get(PATH).headers["x-cache"] == "HIT"
        assert c.post("/api/v1/auth/logout").status_code in (200, 204)
        refused = c.get(PATH)
        assert refused.status_code == 401
