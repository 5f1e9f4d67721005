"""The response cache against real Redis, PostgREST and two proxy processes: never wrong."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import aiohttp
import httpx
import psycopg
import pytest
import redis

from proxy.dependencies import bucket
from tests.support.domain import build_world, call
from tests.support.process import start_proxies
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


def coherent(base: str) -> bool:
    """The proxy says its cache can be trusted (subscribed and listening)."""
    try:
        body = httpx.get(base + "/ready", timeout=2).json()
    except httpx.HTTPError:
        return False
    return bool(body["checks"].get("cache", {}).get("coherent"))


@pytest.fixture(scope="module")
def prefix():
    """A Redis key prefix of this module's own; its keys are deleted afterwards."""
    with own_prefix("cache") as value:
        yield value


@pytest.fixture(scope="module")
def proxies(upstream_env, prefix, tmp_path_factory):
    """Two proxy processes sharing one Redis prefix, both upstream through the counting relay."""
    procs = start_proxies(
        tmp_path_factory,
        "cache-proxy",
        2,
        **upstream_env,
        NIMBUS_REDIS_URL=REDIS_URL,
        NIMBUS_REDIS_PREFIX=prefix,
    )
    urls = [proc.url for proc in procs]
    for url in urls:
        wait_until(lambda u=url: coherent(u), what="cache coherence")
    yield urls
    for proc in procs:
        proc.stop()


@pytest.fixture
def user(new_user, token_for):
    """A fresh user and its Authorization header."""
    uid = new_user()
    return uid, {"Authorization": f"Bearer {token_for(uid)}"}


def test_second_get_is_a_hit_identical_to_upstream(proxies, relay, postgrest, user) -> None:
    """MISS then HIT (on either process), bytes identical to PostgREST, one upstream request."""
    _uid, headers = user
    path = "/test_items?select=id,name,qty&order=id&limit=10&offset=3"
    direct = httpx.get(postgrest.url + path, headers=headers)
    before = relay.requests
    first = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    second = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    third = httpx.get(proxies[1] + "/rest/v1" + path, headers=headers)
    assert [r.headers["x-cache"] for r in (first, second, third)] == ["MISS", "HIT", "HIT"]
    assert first.content == second.content == third.content == direct.content
    assert first.headers["etag"] == second.headers["etag"] == third.headers["etag"]
    assert relay.requests == before + 1


def test_etag_304_without_upstream(proxies, relay, user) -> None:
    """If-None-Match with the entry's ETag is a 304 that never reaches PostgREST."""
    _uid, headers = user
    url = proxies[0] + "/rest/v1/test_items?select=id&order=id&limit=3"
    etag = httpx.get(url, headers=headers).headers["etag"]
    before = relay.requests
    resp = httpx.get(url, headers={**headers, "If-None-Match": etag})
    assert resp.status_code == 304
    assert resp.headers["etag"] == etag
    assert resp.content == b""
    assert relay.requests == before


def test_variants_are_separate_entries(proxies, postgrest, user) -> None:
    """select, order, Range, Accept and Prefer each get their own entry, each byte-identical."""
    _uid, headers = user
    variants = [
        ("/test_items?select=id&order=id&limit=4", {}),
        ("/test_items?select=id,name&order=id&limit=4", {}),
        ("/test_items?select=id&order=id.desc&limit=4", {}),
        ("/test_items?select=id&order=id", {"Range": "0-2"}),
        ("/test_items?select=id&order=id&limit=4", {"Accept": "text/csv"}),
        ("/test_items?select=id&order=id&limit=4", {"Prefer": "count=exact"}),
        ("/test_items?select=id&order=id&limit=4", {"Accept": "application/vnd.pgrst.object"}),
    ]
    for _ in range(2):
        for path, extra in variants:
            h = {**headers, **extra}
            via = httpx.get(proxies[1] + "/rest/v1" + path, headers=h)
            direct = httpx.get(postgrest.url + path, headers=h)
            assert via.status_code == direct.status_code, (path, extra)
            assert via.content == direct.content, (path, extra)
            assert via.headers.get("content-range") == direct.headers.get("content-range")


def test_principals_never_share_entries(proxies, new_user, token_for, database_url) -> None:
    """Two users (and a token refresh) on the same URL: each only ever sees their own rows."""
    users = [new_user() for _ in range(3)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for uid in users:
            conn.execute(
                "insert into public.test_notes (owner, body) values (%s, %s)",
                (uid, f"note of {uid}"),
            )
    url = "/rest/v1/test_notes?select=owner,body"
    for round_ in range(30):
        for i, uid in enumerate(users):
            token = token_for(uid)  # a new token each time, as after a refresh
            resp = httpx.get(
                proxies[(round_ + i) % 2] + url, headers={"Authorization": f"Bearer {token}"}
            )
            assert resp.status_code == 200
            assert {row["owner"] for row in resp.json()} == {uid}
    anon = httpx.get(proxies[0] + url)
    assert anon.status_code == 401


def test_read_your_writes_across_processes(proxies, user) -> None:
    """1,000 write-then-read loops alternating between the two processes: zero stale reads."""
    uid, headers = user
    name = f"ryw-{uid[:8]}"
    with httpx.Client(headers=headers) as client:
        created = client.post(
            proxies[0] + "/rest/v1/test_items",
            json={"name": name, "qty": 0},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code == 201
        url = f"/rest/v1/test_items?select=qty&name=eq.{name}"
        stale = 0
        for i in range(1, 1001):
            writer, reader = proxies[i % 2], proxies[(i + 1) % 2]
            client.get(reader + url)  # make sure an entry exists to go stale
            wrote = client.patch(writer + f"/rest/v1/test_items?name=eq.{name}", json={"qty": i})
            assert wrote.status_code == 204
            if client.get(reader + url).json() != [{"qty": i}]:
                stale += 1
        assert stale == 0


def test_external_write_visible_within_a_second(proxies, user, database_url) -> None:
    """A plain SQL update (as from the dashboard) invalidates cached reads within 1 s."""
    _uid, headers = user
    url = proxies[0] + "/rest/v1/test_items?select=qty&name=eq.item-007"
    assert httpx.get(url, headers=headers).json() == [{"qty": 7}]
    assert httpx.get(url, headers=headers).headers["x-cache"] == "HIT"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.test_items set qty = 70 where name = 'item-007'")
    try:
        wait_until(
            lambda: httpx.get(url, headers=headers).json() == [{"qty": 70}],
            timeout=1,
            what="the external write",
        )
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("update public.test_items set qty = 7 where name = 'item-007'")


async def test_concurrent_misses_coalesce(proxies, relay, user) -> None:
    """500 concurrent GETs of a cold, slow key: one upstream request per process, same 200."""
    _uid, headers = user
    path = f"/rest/v1/rpc/test_slow?ms={300 + secrets.randbelow(100)}"  # a cold key
    before = relay.requests
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def get(i: int):
            async with session.get(proxies[i % 2] + path) as resp:
                return resp.status, await resp.read(), resp.headers.get("X-Cache")

        results = await asyncio.gather(*(get(i) for i in range(500)))
    assert {status for status, _, _ in results} == {200}
    assert {body for _, body, _ in results} == {b'"slept"'}
    states = [state for _, _, state in results]
    assert states.count("MISS") <= 2
    assert states.count("COALESCED") >= 400
    assert relay.requests - before <= 2


def test_corrupt_redis_values_are_misses(proxies, prefix, user) -> None:
    """Garbage or a wrong type under a cache key is a miss, never a 500."""
    _uid, headers = user
    path = "/rest/v1/test_items?select=id&order=id&limit=2&offset=1"
    good = httpx.get(proxies[1] + path, headers=headers)
    assert good.status_code == 200
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + ":c:*"))
        assert keys
        for i, key in enumerate(keys):
            client.delete(key)
            if i % 2:
                client.set(key, b"\x00garbage\nbody")
            else:
                client.lpush(key, b"wrong type")
    finally:
        client.close()
    # The other process has no L1 copy, so it must read (and reject) what is in Redis.
    resp = httpx.get(proxies[0] + path, headers=headers)
    assert resp.status_code == 200
    assert resp.content == good.content


def test_encoded_query_values_are_different_entries(proxies, token_for, database_url) -> None:
    """`name=eq.a%2Bb` (a+b) and `name=eq.a%252Bb` (a%2Bb) are two questions, two answers."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into public.test_items (name, qty) values ('a+b', 1), ('a%2Bb', 2)"
            " on conflict (name) do nothing"
        )
    headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    base = proxies[0] + "/rest/v1/test_items?select=name"
    for _ in range(2):
        plus = httpx.get(base + "&name=eq.a%2Bb", headers=headers).json()
        encoded = httpx.get(base + "&name=eq.a%252Bb", headers=headers).json()
        assert plus == [{"name": "a+b"}]
        assert encoded == [{"name": "a%2Bb"}]


@pytest.fixture(scope="module")
def stock_world(database_url):
    """Organizations with stocked products (tests/support/domain.py)."""
    return build_world(database_url)


def test_stock_writes_drop_only_their_products_reads(proxies, stock_world, token_for) -> None:
    """Stock is invalidated per product: an adjustment of P1 (through either process, or in
    plain SQL) drops cached reads of P1 and of many products, not the cached read of P2; a write
    that does not name its products (an order) drops them all."""
    org = stock_world.a
    # Two products in different buckets (two of three share one 1 time in ~4,000).
    products = list(org.products.values())
    p1, p2 = next(
        (a, b)
        for a in products
        for b in products
        if bucket("stock_levels", a) != bucket("stock_levels", b)
    )
    wh = org.locations["WH1"]
    staff = org.users["staff"]
    headers = {"Authorization": f"Bearer {token_for(staff)}"}
    one = "/rest/v1/stock_levels?select=on_hand&product_id=eq.{}&location_id=eq." + wh
    reads = {
        "p1": one.format(p1),
        "P1": one.format(p1.upper()),  # the same product, spelled in capitals
        "p2": one.format(p2),
        "all": "/rest/v1/stock_levels?select=product_id,on_hand&order=product_id",
    }

    def read(name: str) -> tuple[str, object]:
        response = httpx.get(proxies[0] + reads[name], headers=headers)
        assert response.status_code == 200, response.text
        return response.headers["x-cache"], response.json()

    def primed() -> dict[str, object]:
        seen = {name: read(name)[1] for name in reads}
        assert {name: read(name)[0] for name in reads} == dict.fromkeys(reads, "HIT")
        return seen

    def adjust(base: str, product: str) -> None:
        body = {"product_id": product, "location_id": wh, "quantity_delta": 1, "reason": "count"}
        response = httpx.post(base + "/rest/v1/rpc/adjust_stock", json=body, headers=headers)
        assert response.status_code == 200, response.text

    before = primed()
    adjust(proxies[1], p1)
    state, body = read("p1")
    assert (state, body) == ("MISS", [{"on_hand": before["p1"][0]["on_hand"] + 1}])
    assert read("P1") == ("MISS", body)
    assert read("all")[0] == "MISS"
    assert read("p2") == ("HIT", before["p2"])

    # From elsewhere: the database names the product it changed.
    before = primed()
    with psycopg.connect(stock_world.url) as conn:
        call(conn, staff, "select public.adjust_stock(%s, %s, 1, 'count')", (p2, wh))
    expected = [{"on_hand": before["p2"][0]["on_hand"] + 1}]
    wait_until(lambda: read("p2")[1] == expected, timeout=1, what="the external write")
    assert read("p1") == ("HIT", before["p1"])

    # A write whose products the proxy does not work out drops every product's reads.
    before = primed()
    order = {"kind": "sales", "location_id": wh, "items": [{"product_id": p2, "quantity": 1}]}
    created = httpx.post(proxies[1] + "/rest/v1/rpc/create_order", json=order, headers=headers)
    assert created.status_code == 200, created.text
    assert read("p1")[0] == "MISS"
    assert read("p2")[0] == "MISS"
