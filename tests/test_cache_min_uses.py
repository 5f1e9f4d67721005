"""A key's answer is kept from its second request to a process on (NIMBUS_CACHE_MIN_USES, the
product's default 2; proxy/cache/uses.py): its first is relayed and kept nowhere, so one-off
reads cost no more than the pass-through and cannot push repeated reads out of L1. Two real
proxy processes sharing Redis, upstream through the counting relay."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import httpx
import pytest

from proxy.cache.uses import Uses
from tests.support.cached import coherent_proxies, stored
from tests.support.process import start_proxy
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def prefix():
    with own_prefix("min-uses") as value:
        yield value


@pytest.fixture(scope="module")
def proxies(upstream_env, prefix, tmp_path_factory):
    """Two processes with the product's default min uses, sharing a Redis prefix."""
    yield from coherent_proxies(
        tmp_path_factory, "min-uses", prefix, **upstream_env, NIMBUS_CACHE_MIN_USES="2"
    )


@pytest.fixture
def headers(proxies, new_user, token_for):
    """A new user's Authorization, already seen by both processes: its reads take the relay
    path (a caller's first request takes the full path, which looks up its organizations)."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}"}
    for url in proxies:
        httpx.get(url + "/rest/v1/test_items?select=id&limit=1", headers=headers)
    return headers


def first_use_misses(base: str) -> float:
    """The process's count of first requests relayed uncached (its /metrics)."""
    text = httpx.get(base + "/metrics").text
    for line in text.splitlines():
        if line.startswith("nimbus_cache_requests_total{") and 'level="first_use"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_key_is_kept_from_its_second_request(proxies, relay, postgrest, headers, prefix):
    """First request: MISS, nothing in Redis; second: MISS, stored; third: HIT. On the other
    process the key is new again (MISS, Redis not asked), then found in Redis (HIT). Every
    answer byte-identical to PostgREST's; three upstream requests in all."""
    path = f"/test_items?select=id,name&order=id&limit=5&offset={secrets.randbelow(50)}"
    direct = httpx.get(postgrest.url + path, headers=headers)
    entries, before, counted = stored(prefix), relay.requests, first_use_misses(proxies[0])
    first = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    assert first.headers["x-cache"] == "MISS"
    assert stored(prefix) == entries
    assert first_use_misses(proxies[0]) == counted + 1
    second = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    wait_until(lambda: stored(prefix) == entries + 1, timeout=2, what="the second miss stored")
    third = httpx.get(proxies[0] + "/rest/v1" + path, headers=headers)
    elsewhere = [httpx.get(proxies[1] + "/rest/v1" + path, headers=headers) for _ in range(2)]
    answers = [first, second, third, *elsewhere]
    assert [r.headers["x-cache"] for r in answers] == ["MISS", "MISS", "HIT", "MISS", "HIT"]
    assert {r.content for r in answers} == {direct.content}
    assert relay.requests == before + 3


async def test_a_burst_on_a_new_key_reaches_postgrest_at_most_twice(proxies, relay, headers):
    """300 concurrent GETs of a new, slow key on one process: its first request is relayed, the
    second leads the cache's miss and the rest wait for it — two upstream requests, one 200."""
    path = f"/rest/v1/rpc/test_slow?ms={300 + secrets.randbelow(100)}"
    before = relay.requests
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=0)
    ) as session:

        async def get() -> tuple[int, bytes, str | None]:
            async with session.get(proxies[0] + path) as resp:
                return resp.status, await resp.read(), resp.headers.get("X-Cache")

        results = await asyncio.gather(*(get() for _ in range(300)))
    assert {(status, body) for status, body, _ in results} == {(200, b'"slept"')}
    assert [state for _, _, state in results].count("MISS") <= 2
    assert relay.requests - before <= 2


def test_one_off_reads_do_not_push_repeated_ones_out_of_l1(
    upstream_env, relay, token_for, new_user, tmp_path
):
    """An L1 of 64 KiB: a read asked for twice stays a hit through 300 reads asked for once
    (with every answer kept, they would have evicted it: the same run with min uses 1 does)."""
    headers = {"Authorization": f"Bearer {token_for(new_user())}"}
    found = {}
    for min_uses in ("2", "1"):
        (tmp_path / min_uses).mkdir()
        proc, url = start_proxy(
            tmp_path / min_uses,
            **upstream_env,
            NIMBUS_CACHE_L1_BYTES=str(64 * 1024),
            NIMBUS_CACHE_MIN_USES=min_uses,
        )
        try:
            hot = url + "/rest/v1/test_items?select=id,name,qty&order=id&limit=20"
            for _ in range(2):
                httpx.get(hot, headers=headers)
            assert httpx.get(hot, headers=headers).headers["x-cache"] == "HIT"
            with httpx.Client(headers=headers) as client:
                for n in range(300):
                    once = client.get(f"{url}/rest/v1/test_items?select=id&name=neq.once-{n}")
                    assert once.headers["x-cache"] == "MISS"
            before = relay.requests
            found[min_uses] = httpx.get(hot, headers=headers).headers["x-cache"]
            assert relay.requests == before + (found[min_uses] == "MISS")
        finally:
            proc.stop()
    assert found == {"2": "HIT", "1": "MISS"}


def test_uses_counts_per_key_and_forgets_the_oldest() -> None:
    """wanted() is False until a key's min_uses-th request; counts survive one rotation of the
    two generations and are gone after two (a forgotten key starts again)."""
    uses = Uses(3, capacity=4)
    assert [uses.wanted("a") for _ in range(4)] == [False, False, True, True]
    assert Uses(1).wanted("anything")
    uses.wanted("b")  # b: 1
    for key in ("c", "d"):
        uses.wanted(key)  # the 4th distinct key rotates: a, b, c, d become the older ones
    assert uses.wanted("b") is False  # 2 (from the older generation)
    assert uses.wanted("b") is True  # 3
    for key in "efghijkl":
        uses.wanted(key)  # two more rotations: b's count is gone
    assert uses.wanted("b") is False


def test_a_conditional_request_counts_as_a_repeat(proxies, relay, headers, prefix):
    """A client sending If-None-Match holds an answer already: on a process that has not been
    asked for the key, the request is not a first use but a lookup of Redis — a 304 for the
    ETag the other process's stored answer carries, without reaching PostgREST."""
    path = f"/rest/v1/test_items?select=id,qty&order=id&limit=4&offset={secrets.randbelow(50)}"
    entries = stored(prefix)
    _first, second = (httpx.get(proxies[0] + path, headers=headers) for _ in range(2))
    wait_until(lambda: stored(prefix) == entries + 1, timeout=2, what="the second miss stored")
    etag = second.headers["etag"]
    before = relay.requests
    again = httpx.get(proxies[1] + path, headers={**headers, "If-None-Match": etag})
    assert (again.status_code, again.headers.get("etag"), again.content) == (304, etag, b"")
    assert relay.requests == before
