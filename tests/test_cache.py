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

from proxy.cache.dependencies import bucket, place_bucket
from tests.support.cached import coherent_proxies, stored
from tests.support.domain import build_world, call
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def prefix():
    """A Redis key prefix of this module's own; its keys are deleted afterwards."""
    with own_prefix("cache") as value:
        yield value


@pytest.fixture(scope="module")
def proxies(upstream_env, prefix, tmp_path_factory):
    """Two proxy processes sharing one Redis prefix, both upstream through the counting relay."""
    yield from coherent_proxies(tmp_path_factory, "cache-proxy", prefix, **upstream_env)


@pytest.fixture
def user(new_user, token_for):
    """A fresh user and its Authorization header."""
    uid = new_user()
    return uid, {"Authorization": f"Bearer {token_for(uid)}"}


def test_second_get_is_a_hit_identical_to_upstream(proxies, relay, postgrest, user, prefix) -> None:
    """MISS then HIT (on either process, once the miss is stored in Redis: after answering),
    bytes identical to PostgREST, one upstream request."""
    _uid, headers = user
    path = "/test_items?select=id,name,qty&order=id&limit=10&offset=3"
    direct = httpx.get(postgrest.url + path, headers=headers)
    entries = stored(prefix)
    before = relay.requests
    first = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    second = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    wait_until(lambda: stored(prefix) > entries, timeout=2, what="the store after the miss")
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
    entries = stored(prefix)
    good = httpx.get(proxies[1] + path, headers=headers)
    assert good.status_code == 200
    wait_until(lambda: stored(prefix) > entries, timeout=2, what="the store after the miss")
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


def named_reads(base: str, reads: dict[str, str], headers: dict[str, str]):
    """read(name) -> (X-Cache, body) of one of reads through base; primed() reads each twice,
    asserts the second time is a hit, and returns the bodies."""

    def read(name: str) -> tuple[str, object]:
        response = httpx.get(base + reads[name], headers=headers)
        assert response.status_code == 200, response.text
        return response.headers["x-cache"], response.json()

    def primed() -> dict[str, object]:
        seen = {name: read(name)[1] for name in reads}
        assert {name: read(name)[0] for name in reads} == dict.fromkeys(reads, "HIT")
        return seen

    return read, primed


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

    read, primed = named_reads(proxies[0], reads, headers)

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


def test_stock_writes_drop_only_their_places_reads(proxies, stock_world, token_for) -> None:
    """Stock at a place (one product at one location) is invalidated per place: an adjustment
    of P at WH1 — through /rest/v1 on either process, /api/v1, or plain SQL — drops the cached
    reads of P at WH1 and of P anywhere, not the cached read of P at ST1; a transfer from WH1
    to ST1 drops both places. (S6 in make bench: a product's stock read per location.)"""
    org = stock_world.a
    product = next(iter(org.products.values()))
    wh, st = org.locations["WH1"], org.locations["ST1"]
    assert place_bucket("stock_levels", product, wh) != place_bucket("stock_levels", product, st)
    headers = {"Authorization": f"Bearer {token_for(org.users['staff'])}"}
    at = "/rest/v1/stock_levels?select=on_hand&product_id=eq.{}&location_id=eq.{}"
    reads = {
        "wh": at.format(product, wh),
        "st": at.format(product, st),
        "any": f"/rest/v1/stock_levels?select=location_id,on_hand&product_id=eq.{product}"
        "&order=location_id",
    }

    read, primed = named_reads(proxies[0], reads, headers)

    adjustment = {"product_id": product, "location_id": wh, "quantity_delta": 1, "reason": "x"}
    writes = {
        "rest": lambda: httpx.post(
            proxies[1] + "/rest/v1/rpc/adjust_stock", json=adjustment, headers=headers
        ),
        "api": lambda: httpx.post(
            proxies[1] + "/api/v1/stock/adjustments", json=adjustment, headers=headers
        ),
    }
    for how, write in writes.items():
        before = primed()
        assert write().status_code in (200, 201), how
        state, body = read("wh")
        assert (state, body) == ("MISS", [{"on_hand": before["wh"][0]["on_hand"] + 1}]), how
        assert read("any")[0] == "MISS", how
        assert read("st") == ("HIT", before["st"]), how

    before = primed()  # from elsewhere: the trigger names the places it changed
    with psycopg.connect(stock_world.url) as conn:
        call(conn, org.users["staff"], "select public.adjust_stock(%s, %s, 1, 'x')", (product, wh))
    expected = [{"on_hand": before["wh"][0]["on_hand"] + 1}]
    wait_until(lambda: read("wh")[1] == expected, timeout=1, what="the external write")
    assert read("st") == ("HIT", before["st"])

    before = primed()
    transfer = {"product_id": product, "from_location_id": wh, "to_location_id": st, "quantity": 1}
    moved = httpx.post(proxies[1] + "/rest/v1/rpc/transfer_stock", json=transfer, headers=headers)
    assert moved.status_code == 200, moved.text
    assert read("wh") == ("MISS", [{"on_hand": before["wh"][0]["on_hand"] - 1}])
    had = before["st"][0]["on_hand"] if before["st"] else 0  # ST1 may have had no row yet
    assert read("st") == ("MISS", [{"on_hand": had + 1}])


# --- Issue 13: stale reads after your own write, failed writes, memory -----------------------


def staff_of(stock_world, token_for) -> tuple[dict[str, str], list[str], str]:
    """Organization a's staff headers, its products and its first warehouse."""
    org = stock_world.a
    headers = {"Authorization": f"Bearer {token_for(org.users['staff'])}"}
    return headers, list(org.products.values()), org.locations["WH1"]


def adjust(base: str, headers: dict[str, str], product: str, location: str) -> None:
    """adjust_stock(+1) through the proxy at base."""
    body = {"product_id": product, "location_id": location, "quantity_delta": 1, "reason": "count"}
    response = httpx.post(base + "/rest/v1/rpc/adjust_stock", json=body, headers=headers)
    assert response.status_code == 200, response.text


def test_semicolon_separated_select_sees_your_own_stock_write(
    proxies, postgrest, stock_world, token_for
) -> None:
    """`products?id=eq.X;select=id,stock_levels(...)`: PostgREST reads `;` as `&`, so the read
    embeds stock_levels and must move with adjust_stock on X (it stayed a stale hit)."""
    headers, products, wh = staff_of(stock_world, token_for)
    x = products[0]
    for query in (
        f"id=eq.{x};select=id,stock_levels(location_id,on_hand)",
        f"id=eq.{x}&sel%65ct=id,stock_levels(location_id,on_hand)",
        f"sel%65ct=id,stock_levels(location_id,on_hand)&id=eq.{x}",
    ):
        path = "/products?" + query
        for _ in range(2):
            httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
        adjust(proxies[1], headers, x, wh)
        via = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
        direct = httpx.get(postgrest.url + path, headers=headers)
        assert via.status_code == direct.status_code == 200
        assert via.json() == direct.json(), query


def test_scoped_read_embedding_other_products_sees_their_writes(
    proxies, postgrest, stock_world, token_for
) -> None:
    """A read of X's stock that embeds every product's stock at X's locations moves with a
    write of Y (it stayed a stale hit: product scoping applied where it was not complete)."""
    headers, products, wh = staff_of(stock_world, token_for)
    x, y = next(
        (a, b)
        for a in products
        for b in products
        if bucket("stock_levels", a) != bucket("stock_levels", b)
    )
    path = (
        f"/stock_levels?product_id=eq.{x}&location_id=eq.{wh}"
        "&select=product_id,on_hand,locations(stock_levels(product_id,on_hand))"
    )
    first_read = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    assert httpx.get(proxies[0] + "/rest/v1" + path, headers=headers).headers["x-cache"] == "HIT"
    adjust(proxies[1], headers, y, wh)
    via = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    assert via.json() == httpx.get(postgrest.url + path, headers=headers).json()
    assert via.json() != first_read.json()


def generation(prefix: str, name: str) -> int:
    """The shared counter of one generation name in Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.hget(prefix + ":gen", name) or 0)
    finally:
        client.close()


def test_failed_and_empty_writes_move_nothing(
    proxies, prefix, stock_world, token_for, database_url
) -> None:
    """A write PostgREST answered 4xx (rolled back) or a PATCH/DELETE it says matched no row
    moves no generation: hits of the same and of other organizations stay hits. Every
    NOTIFY those statements could have sent is accounted for by a later marker write."""
    headers, products, wh = staff_of(stock_world, token_for)
    other = {"Authorization": f"Bearer {token_for(stock_world.b.users['viewer'])}"}
    reads = [
        (headers, "/rest/v1/products?select=id,sku,stock_levels(on_hand)&order=sku"),
        (other, "/rest/v1/products?select=id,sku&order=sku"),
        (other, "/rest/v1/stock_levels?select=product_id,on_hand&order=product_id"),
    ]
    for h, path in reads:
        for base in proxies:
            httpx.get(base + path, headers=h)
    nobody = str(uuid.uuid4())
    count = {"Prefer": "count=exact"}
    attempts = [
        ("POST", "/rest/v1/rpc/create_order", {}, {}),
        ("POST", "/rest/v1/rpc/create_order", {"kind": "nope", "location_id": wh, "items": []}, {}),
        ("POST", "/rest/v1/rpc/adjust_stock", {"product_id": products[0]}, {}),
        ("POST", "/rest/v1/products", {"sku": None}, {}),
        ("PATCH", f"/rest/v1/products?id=eq.{nobody}", {"name": "x"}, count),
        ("DELETE", f"/rest/v1/categories?id=eq.{nobody}", None, count),
        ("PATCH", f"/rest/v1/stock_levels?product_id=eq.{nobody}", {"reorder_point": 1}, count),
    ]
    for method, path, body, extra in attempts:
        response = httpx.request(method, proxies[0] + path, json=body, headers={**headers, **extra})
        assert response.status_code < 500, (path, response.text)
        if response.status_code < 300:
            assert response.headers["content-range"] == "*/0", path
    # A marker written after them: once both listeners have bumped it, any NOTIFY of the
    # statements above (delivered in commit order) has been applied too.
    marker = generation(prefix, "test_items")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("update public.test_items set qty = qty where name = 'item-001'")
    wait_until(lambda: generation(prefix, "test_items") >= marker + 2, what="the marker")
    for h, path in reads:
        for base in proxies:
            assert httpx.get(base + path, headers=h).headers["x-cache"] == "HIT", (base, path)


@pytest.fixture
def lone_proxy(upstream_env, tmp_path_factory):
    """One proxy process with the default L1 size, no Redis; yields (url, pid)."""
    from tests.support.process import start_proxy

    proc, url = start_proxy(tmp_path_factory.mktemp("memory-proxy"), **upstream_env)
    yield url, proc.process.pid
    proc.stop()


def memory_kb(pid: int, field: str) -> int:
    """VmRSS or VmHWM (peak) of a process, in kB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def test_l1_filled_with_the_largest_keys_stays_under_150_mb(lone_proxy, token_for) -> None:
    """3,000 distinct misses, each with a query near the 16 KiB request-line limit (echoed in
    Content-Location) and 15 KB Prefer and Range-Unit headers (both in the key): the L1 counts
    all of it, so the process stays under 150 MB (it reached ~280 MB counting body + 1 KiB)."""
    url, pid = lone_proxy
    headers = {
        "Authorization": f"Bearer {token_for(str(uuid.uuid4()))}",
        "Prefer": "x-pad=" + "p" * 15_000,
        "Range-Unit": "u" * 15_000,
    }
    pad = "x" * 16_000
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(
        headers=headers, connector=connector, max_line_size=65536, max_field_size=65536
    ) as session:

        async def get(i: int) -> str:
            path = f"/rest/v1/test_items?select=id&limit=1&name=neq.{i:06d}{pad}"
            async with session.get(url + path) as resp:
                await resp.read()
                assert resp.status == 200
                return resp.headers.get("X-Cache", "")

        for start in range(0, 3000, 200):
            states = await asyncio.gather(*(get(i) for i in range(start, start + 200)))
            assert set(states) == {"MISS"}
    peak = memory_kb(pid, "VmHWM") / 1024
    print(f"\nL1 filled with 3,000 largest entries: peak RSS {peak:.1f} MB")
    assert memory_kb(pid, "VmRSS") / 1024 < 150
    assert peak < 150, f"peak RSS {peak:.0f} MB"
