"""The relay path (proxy/edge/relaypath.py, proxy/edge/protocol.py): GETs relayed to PostgREST by
the protocol handler must be the answers the full aiohttp path gives, errors included, and in the
order they were asked — on a proxy without a response cache, and as a cached proxy's misses (what
is stored, and how it is answered next, included).

Proxy processes on the same PostgREST: one with the fast paths, one without (NIMBUS_HIT_PATH=false).
Keep-alive clients throughout; the first request of a client goes the full path (its token is
verified there), the ones after it are relayed."""

from __future__ import annotations

import re
import socket
import uuid

import httpx
import pytest
import redis

from tests.support.process import start_proxy
from tests.support.redis_server import SHARED_REDIS, own_prefix
from tests.support.wait import wait_until
from tests.test_hitpath import comparable, hit_path_count

REQUESTS = [
    ("/rest/v1/test_items?select=id,name,qty&order=id&limit=5", {}),
    ("/rest/v1/test_items?select=id&order=id", {"Range-Unit": "items", "Range": "2-4"}),
    ("/rest/v1/test_items?select=id&limit=2", {"Prefer": "count=exact"}),
    ("/rest/v1/test_items?select=name,qty&order=id&limit=3", {"Accept": "text/csv"}),
    ("/rest/v1/test_items?id=eq.1", {"Accept": "application/vnd.pgrst.object+json"}),
    ("/rest/v1/no_such_table", {}),
    ("/rest/v1/test_items?qty=bogus.1", {}),
    ("/rest/v1/rpc/test_padding?size=400000", {}),  # streamed: over the 256 KiB threshold
]


def relayed_count(base: str) -> float:
    """nimbus_relay_path_responses_total of one proxy process."""
    text = httpx.get(base + "/metrics").text
    found = re.search(r"^nimbus_relay_path_responses_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def pair(upstream_env, tmp_path_factory):
    """{"on": url, "off": url}: the same uncached proxy with and without the fast paths."""
    procs, urls = [], {}
    for name, flag in (("on", "true"), ("off", "false")):
        proc, url = start_proxy(
            tmp_path_factory.mktemp(f"relay-{name}"),
            **upstream_env,
            NIMBUS_CACHE_ENABLED="false",
            NIMBUS_HIT_PATH=flag,
        )
        procs.append(proc)
        urls[name] = url
    for url in urls.values():
        wait_until(lambda u=url: httpx.get(u + "/ready").status_code == 200, what="ready")
    yield urls
    for proc in procs:
        proc.stop()


def test_relayed_answers_are_the_full_paths(pair, auth) -> None:
    """Lists, ranges, counts, CSV, one object, a 404, a 400 and a streamed body: status, headers
    and body equal to the full path's (Date, X-Request-Id and the RateLimit count aside)."""
    answers = {}
    for name, base in pair.items():
        with httpx.Client(base_url=base, headers=auth) as client:
            assert client.get(REQUESTS[0][0]).status_code == 200  # the token, verified
            before = relayed_count(base)
            answers[name] = [client.get(path, headers=extra) for path, extra in REQUESTS]
            relayed = relayed_count(base) - before
        assert relayed == (len(REQUESTS) if name == "on" else 0)
    statuses = [r.status_code for r in answers["on"]]
    assert statuses[5:] == [404, 400, 200]
    for on, off in zip(answers["on"], answers["off"], strict=True):
        assert on.status_code == off.status_code
        assert comparable(on) == comparable(off)
        assert on.content == off.content
        assert (
            on.headers["x-request-id"] and on.headers["x-request-id"] != off.headers["x-request-id"]
        )
    assert answers["on"][0].headers["ratelimit-policy"].startswith('"read"')
    assert len(answers["on"][-1].content) > 400_000


WRITES = [
    # (path, extra headers, JSON body; {name} is made unique per proxy)
    (
        "/rest/v1/test_items?select=name,qty",
        {"Prefer": "return=representation"},
        '{"name":"{name}-a","qty":3}',
    ),
    ("/rest/v1/test_items", {}, '{"name":"{name}-b","qty":2}'),
    ("/rest/v1/rpc/test_total_qty", {}, '{"min_qty":1000000}'),
    ("/rest/v1/rpc/test_total_qty", {}, ""),  # no body at all
    ("/rest/v1/test_items", {}, '{"name":"{name}-c","qty":-1}'),  # a check violation
    ("/rest/v1/test_items", {}, '{"nope":1}'),  # no such column
    ("/rest/v1/no_such_table", {}, '{"a":1}'),
]


def test_relayed_writes_are_the_full_paths(pair, auth) -> None:
    """POSTs — an insert returning its row, one returning nothing, an RPC with and without a
    body, a check violation, an unknown column, an unknown table — are relayed (the client
    sends each body after its headers) and answered as the full path answers them."""
    answers, names = {}, {}
    for name, base in pair.items():
        names[name] = f"relay-write-{name[:2]}-{uuid.uuid4().hex[:8]}"  # same length
        with httpx.Client(base_url=base, headers=auth) as client:
            assert client.get(REQUESTS[0][0]).status_code == 200  # the token, verified
            assert client.post("/rest/v1/rpc/test_total_qty", json={}).status_code == 200
            before = relayed_count(base)
            answers[name] = [
                client.post(
                    path,
                    content=body.replace("{name}", names[name]).encode(),
                    headers={**extra, "Content-Type": "application/json"},
                )
                for path, extra, body in WRITES
            ]
            relayed = relayed_count(base) - before
        assert relayed == (len(WRITES) if name == "on" else 0)
    assert [r.status_code for r in answers["on"]] == [201, 201, 200, 200, 400, 400, 404]
    for index, (on, off) in enumerate(zip(answers["on"], answers["off"], strict=True)):
        assert on.status_code == off.status_code
        if index == 3:  # the total of every row, which the other proxy's inserts moved
            assert on.text.isdigit() and off.text.isdigit()
            assert on.headers["content-type"] == off.headers["content-type"]
            continue
        assert comparable(on) == comparable(off)
        mine, theirs = names["on"].encode(), names["off"].encode()
        assert on.content.replace(mine, b"") == off.content.replace(theirs, b"")
    assert answers["on"][0].json() == [{"name": names["on"] + "-a", "qty": 3}]
    assert answers["on"][0].headers["ratelimit-policy"].startswith('"write"')


def aborted_posts(base: str) -> float:
    """How many POSTs one proxy process recorded as 499 (the client left before its answer)."""
    text = httpx.get(base + "/metrics").text
    found = re.findall(
        r'^nimbus_http_request_duration_seconds_count\{method="POST",route="[^"]*",'
        r'status="499"\} (\S+)$',
        text,
        re.M,
    )
    return sum(float(value) for value in found)


def test_a_client_that_leaves_mid_body_ends_its_relay(pair, auth) -> None:
    """A relayed POST whose client goes away before the rest of its body is sent is ended (the
    proxy does not wait for it forever, nor send what it has upstream): the part sent is valid
    JSON on its own, and nothing is inserted."""
    host, port = pair["on"].removeprefix("http://").split(":")
    marker = f"half-{uuid.uuid4().hex[:8]}"
    whole = f'{{"name":"{marker}","qty":1}}'.encode()
    body = whole + b" " * 32  # the client leaves after `whole`: a body PostgREST would take
    head = (
        f"POST /rest/v1/test_items HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {auth['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with httpx.Client(base_url=pair["on"], headers=auth) as client:
        assert client.get(REQUESTS[0][0]).status_code == 200  # the token, verified
        assert client.post("/rest/v1/rpc/test_total_qty", json={}).status_code == 200
    before, aborted = relayed_count(pair["on"]), aborted_posts(pair["on"])
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + whole)
        wait_until(lambda: relayed_count(pair["on"]) > before, what="the relay")
    wait_until(
        lambda: aborted_posts(pair["on"]) == aborted + 1,
        what="the relay to end (recorded as 499)",
    )
    with httpx.Client(base_url=pair["on"], headers=auth) as client:
        assert client.get(f"/rest/v1/test_items?name=eq.{marker}").json() == []


def test_unsized_and_oversized_writes_take_the_full_path(pair, auth, tmp_path) -> None:
    """A chunked body and one over NIMBUS_MAX_BODY_BYTES are not relayed; the answers are the
    full path's (201 for the chunked insert, 413 in the proxy's JSON for the large one)."""
    answers = {}
    for name, base in pair.items():
        with httpx.Client(base_url=base, headers=auth) as client:
            assert client.get(REQUESTS[0][0]).status_code == 200  # the token, verified
            assert client.post("/rest/v1/rpc/test_total_qty", json={}).status_code == 200
            before = relayed_count(base)
            unique = f"chunked-{name[:2]}-{uuid.uuid4().hex[:8]}"
            chunked = client.post(
                "/rest/v1/test_items",
                content=iter([f'{{"name":"{unique}",'.encode(), b'"qty":1}']),
                headers={"Content-Type": "application/json"},
            )
            large = client.post(
                "/rest/v1/rpc/test_total_qty",
                content=b'{"min_qty":1' + b" " * 1_100_000 + b"}",
                headers={"Content-Type": "application/json"},
            )
            assert relayed_count(base) - before == 0
            answers[name] = (chunked, large)
    for on, off in zip(answers["on"], answers["off"], strict=True):
        assert on.status_code == off.status_code
        assert comparable(on) == comparable(off)
    assert [r.status_code for r in answers["on"]] == [201, 413]
    assert answers["on"][1].json()["code"] == "payload_too_large"


@pytest.fixture(scope="module")
def deaf_pair(upstream_env, tmp_path_factory):
    """Two cached processes sharing Redis entries and generations that do not LISTEN: a write's
    own bump is the only thing that can move what they serve."""
    with own_prefix("relay-deaf") as prefix:
        procs = [
            start_proxy(
                tmp_path_factory.mktemp(f"relay-deaf-{i}"),
                **upstream_env,
                NIMBUS_REDIS_URL=SHARED_REDIS,
                NIMBUS_REDIS_PREFIX=prefix,
                NIMBUS_LISTEN_ENABLED="false",
            )
            for i in range(2)
        ]
        urls = [url for _, url in procs]
        for url in urls:
            wait_until(
                lambda u=url: httpx.get(u + "/ready").json()["checks"]["cache"]["coherent"],
                what="cache coherence",
            )
        yield urls
        for proc, _ in procs:
            proc.stop()


def test_a_relayed_write_is_seen_by_the_next_read_on_every_process(deaf_pair, auth) -> None:
    """On a cached proxy a relayed insert moves what it names before its client hears of it:
    the next read, here and on the other process, shows the row (no stale HIT); a write that
    PostgREST refused moves nothing (the reads stay HITs). The processes do not LISTEN, so
    only the relay's own bump can do this."""
    marker = f"ryw-{uuid.uuid4().hex[:8]}"
    path = f"/rest/v1/test_items?select=name&name=like.{marker}*&order=name"
    base, peer = deaf_pair
    with (
        httpx.Client(base_url=base, headers=auth) as c,
        httpx.Client(base_url=peer, headers=auth) as p,
    ):
        assert c.get("/rest/v1/test_items?select=id&limit=1").status_code == 200
        assert c.post("/rest/v1/test_items", json={"qty": 1}).status_code == 400  # a lease
        assert p.get("/rest/v1/test_items?select=id&limit=1").status_code == 200
        assert c.get(path).json() == p.get(path).json() == []
        assert [c.get(path).headers["x-cache"], p.get(path).headers["x-cache"]] == ["HIT"] * 2
        before = relayed_count(base)
        refused = c.post("/rest/v1/test_items", json={"name": marker + "-x", "qty": -1})
        assert refused.status_code == 400
        assert [c.get(path).headers["x-cache"], p.get(path).headers["x-cache"]] == ["HIT"] * 2
        added = c.post("/rest/v1/test_items", json={"name": marker + "-y", "qty": 1})
        assert added.status_code == 201
        assert relayed_count(base) - before == 2
        mine, theirs = c.get(path), p.get(path)
    assert mine.json() == theirs.json() == [{"name": marker + "-y"}]  # the peer's from Redis
    assert mine.headers["x-cache"] == "MISS"


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """count HTTP/1.1 answers with Content-Length bodies, in the order they arrive."""
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
            continue
        head = data[:head_end].decode("latin-1")
        length = int(re.search(r"(?im)^content-length: (\d+)", head).group(1))
        end = head_end + 4 + length
        while len(data) < end:
            data += sock.recv(65536)
        answers.append(data[head_end + 4 : end])
        data = data[end:]
    return answers


def test_pipelined_requests_are_answered_in_order(pair, auth) -> None:
    """Requests sent back to back on one connection — relayed ones, one the full path takes
    (a POST), more relayed ones behind it — come back in the order they were sent."""
    host, port = pair["on"].removeprefix("http://").split(":")
    token = auth["Authorization"]

    def get(limit: int) -> bytes:
        return (
            f"GET /rest/v1/test_items?select=id&order=id&limit={limit} HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: {token}\r\n\r\n"
        ).encode()

    post = (
        f"POST /rest/v1/rpc/test_total_qty HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}"
        '\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"min_qty":0}'
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(get(1))  # full path: verifies the token
        assert read_answers(sock, 1)[0].count(b'"id"') == 1
        before = relayed_count(pair["on"])
        sock.sendall(get(2) + get(3) + post + get(4) + get(5))
        bodies = read_answers(sock, 5)
    assert [b.count(b'"id"') for b in bodies[:2]] == [2, 3]
    assert [b.count(b'"id"') for b in bodies[3:]] == [4, 5]
    assert bodies[2].strip().isdigit()  # the POST's answer, a number, in its place
    assert relayed_count(pair["on"]) - before >= 2


@pytest.mark.parametrize("kind", ["down", "silent"])
def test_upstream_failures_answer_like_the_full_path(kind, jwt_secret, token_for, tmp_path) -> None:
    """PostgREST not listening (503 + Retry-After) or not answering (504): the relayed answer
    is the full path's JSON error."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    upstream_port = listener.getsockname()[1]
    if kind == "silent":
        listener.listen(16)  # accepts connections, never answers
    else:
        listener.close()
    answers = {}
    try:
        for name, flag in (("on", "true"), ("off", "false")):
            (tmp_path / name).mkdir()
            proc, url = start_proxy(
                tmp_path / name,
                NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{upstream_port}",
                NIMBUS_JWT_SECRET=jwt_secret,
                NIMBUS_CACHE_ENABLED="false",
                NIMBUS_HIT_PATH=flag,
                NIMBUS_UPSTREAM_TIMEOUT_S="0.5",
            )
            try:
                headers = {
                    "Authorization": f"Bearer {token_for('00000000-0000-0000-0000-0000000000aa')}"
                }
                with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
                    client.get("/rest/v1/test_items")  # the token, verified
                    before = relayed_count(url)
                    answers[name] = client.get("/rest/v1/test_items")
                    assert relayed_count(url) - before == (1 if name == "on" else 0)
            finally:
                assert proc.stop() == 0
    finally:
        listener.close()
    on, off = answers["on"], answers["off"]
    assert on.status_code == off.status_code == (503 if kind == "down" else 504)
    assert comparable(on) == comparable(off)
    assert on.json() == off.json()
    if kind == "down":
        assert on.headers["retry-after"].isdigit()


@pytest.fixture(scope="module")
def cached_trio(upstream_env, tmp_path_factory):
    """{"on": url, "off": url, "peer": url}: cached proxies with and without the fast paths (each
    with a Redis prefix of its own), and a fast one sharing "on"'s Redis entries."""
    with own_prefix("relay-on") as shared, own_prefix("relay-off") as apart:
        procs, urls = [], {}
        for name, flag, prefix in (
            ("on", "true", shared),
            ("off", "false", apart),
            ("peer", "true", shared),
        ):
            proc, url = start_proxy(
                tmp_path_factory.mktemp(f"relay-cached-{name}"),
                **upstream_env,
                NIMBUS_REDIS_URL=SHARED_REDIS,
                NIMBUS_REDIS_PREFIX=prefix,
                NIMBUS_HIT_PATH=flag,
            )
            procs.append(proc)
            urls[name] = url
        for url in urls.values():
            wait_until(
                lambda u=url: httpx.get(u + "/ready").json()["checks"]["cache"]["coherent"],
                what="cache coherence",
            )
        urls["prefix"] = shared
        yield urls
        for proc in procs:
            proc.stop()


def test_cached_misses_are_relayed_like_the_full_path(cached_trio, auth) -> None:
    """On a cached proxy every request of REQUESTS is a miss the relay path answers as the full
    path does (X-Cache: MISS, the ETag of what it stored; errors and the streamed answer as they
    are); asked again, what was stored is a hit-path HIT, the errors are relayed again."""
    answers, again = {}, {}
    for name in ("on", "off"):
        base = cached_trio[name]
        with httpx.Client(base_url=base, headers=auth) as client:
            assert client.get("/rest/v1/test_items?select=id&limit=1").status_code == 200
            before = relayed_count(base)
            answers[name] = [client.get(path, headers=extra) for path, extra in REQUESTS]
            assert relayed_count(base) - before == (len(REQUESTS) if name == "on" else 0)
            hits = hit_path_count(base)
            again[name] = [client.get(path, headers=extra) for path, extra in REQUESTS]
            if name == "on":
                assert hit_path_count(base) - hits >= 4  # the five stored, a lease renewal aside
    for on, off in zip(answers["on"], answers["off"], strict=True):
        assert on.status_code == off.status_code
        assert comparable(on) == comparable(off)
        assert on.content == off.content
    cache_states = [r.headers.get("x-cache") for r in answers["on"]]
    assert cache_states == ["MISS"] * 7 + [None]  # the streamed answer is never stored
    assert all(r.headers.get("etag") for r in answers["on"][:5])
    assert answers["on"][0].headers["ratelimit-policy"].startswith('"read"')
    assert [r.headers.get("x-cache") for r in again["on"]] == ["HIT"] * 5 + ["MISS"] * 2 + [None]
    for first, second in zip(answers["on"], again["on"], strict=True):
        assert first.content == second.content


def test_a_relayed_miss_finds_what_another_process_stored(cached_trio, auth) -> None:
    """A miss on one process is stored in Redis after its answer; the same read on another process
    is relayed and answered from Redis (an L2 HIT), then from that process's own L1."""
    path = "/rest/v1/test_items?select=id,name&order=id&limit=4"
    client = redis.Redis.from_url(SHARED_REDIS)
    pattern = cached_trio["prefix"] + ":c:*"
    stored = set(client.scan_iter(match=pattern))
    with httpx.Client(base_url=cached_trio["on"], headers=auth) as c:
        assert c.get("/rest/v1/test_items?select=id&limit=1").status_code == 200
        first = c.get(path)
    assert first.headers["x-cache"] == "MISS"
    wait_until(lambda: set(client.scan_iter(match=pattern)) - stored, what="the Redis store")
    client.close()
    peer = cached_trio["peer"]
    with httpx.Client(base_url=peer, headers=auth) as c:
        assert c.get("/rest/v1/test_items?select=id&limit=2").status_code == 200
        before = relayed_count(peer)
        second = c.get(path)
        assert relayed_count(peer) - before == 1
        third = c.get(path)
    assert (second.headers["x-cache"], third.headers["x-cache"]) == ("HIT", "HIT")
    assert first.content == second.content == third.content
    assert first.headers["etag"] == second.headers["etag"]
