"""Rate limits: GCRA in Redis shared by processes, per-user keys, IETF headers, 429s."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import pytest

from proxy.gate.leases import RateLimiter
from proxy.gate.ratelimit import Policy
from proxy.ops.redisconn import RedisGuard, make_client
from tests.support.process import start_proxies
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until
from tests.test_cache import REDIS_URL

PATH = "/rest/v1/test_items?select=id&limit=1"


@pytest.fixture(scope="module")
def limited(upstream_env, tmp_path_factory):
    """Two processes sharing Redis with a read limit of 100 per minute (no refill in a test)."""
    with own_prefix("rl") as prefix:
        procs = start_proxies(
            tmp_path_factory,
            "rl",
            2,
            **upstream_env,
            NIMBUS_REDIS_URL=REDIS_URL,
            NIMBUS_REDIS_PREFIX=prefix,
            NIMBUS_RATE_LIMIT_READ="100/600",
            NIMBUS_RATE_LIMIT_AUTH="5/600",
            NIMBUS_CACHE_ENABLED="false",
        )
        urls = [proc.url for proc in procs]
        for url in urls:
            wait_until(lambda u=url: httpx.get(u + "/ready").status_code == 200, what="ready")
        yield urls
        for proc in procs:
            proc.stop()


def test_limit_then_429_with_headers(limited, token_for) -> None:
    """Requests within the budget carry RateLimit headers; the next one is a JSON 429."""
    headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    with httpx.Client(base_url=limited[0], headers=headers) as client:
        first = client.get(PATH)
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"read";q=100;w=600'
        assert first.headers["ratelimit"].startswith('"read";r=99;')
        for _ in range(99):
            assert client.get(PATH).status_code == 200
        refused = client.get(PATH)
        again = client.get(PATH)  # refused from what this process remembers, not Redis
    assert refused.status_code == again.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["ratelimit"].startswith('"read";r=0;')
    # The budget is whole again when Redis said, in every refusal: a repeated 429 said t=0
    # ("whole now") beside Retry-After: 1 (found by a hostile probe).
    for answer in (refused, again):
        reset = int(answer.headers["ratelimit"].rsplit("t=", 1)[1])
        assert reset >= int(answer.headers["retry-after"]) >= 1, answer.headers["ratelimit"]


async def test_exactly_the_limit_across_two_processes(limited, token_for) -> None:
    """200 concurrent requests of one user, split over two processes: exactly 100 allowed."""
    headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def get(i: int) -> int:
            async with session.get(limited[i % 2] + PATH) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(get(i) for i in range(200)))
    assert statuses.count(200) == 100
    assert statuses.count(429) == 100


def test_forged_tokens_do_not_spend_the_victims_budget(limited, token_for, jwt_secret) -> None:
    """Tokens forged with a victim's sub are 401s charged to the sender's address."""
    from proxy.gate.tokens import mint

    victim = str(uuid.uuid4())
    forged = mint("not-the-secret-" + "x" * 40, sub=victim)
    with httpx.Client(base_url=limited[1]) as client:
        codes = [
            client.get(PATH, headers={"Authorization": f"Bearer {forged}"}).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [401] * 5
        assert codes[5:] == [429] * 3
        real = client.get(PATH, headers={"Authorization": f"Bearer {token_for(victim)}"})
    assert real.status_code == 200
    assert real.headers["ratelimit"].startswith('"read";r=99;')


def test_spoofed_forwarded_for_is_ignored_from_untrusted_peers(limited) -> None:
    """X-Forwarded-For from a peer not in NIMBUS_TRUSTED_PROXIES does not change the subject."""
    with httpx.Client(base_url=limited[0]) as client:
        codes = [
            client.get(
                PATH,
                headers={"Authorization": "Bearer nope", "X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(10)
        ]
    # One budget (127.0.0.1's, 5 failures) for all ten, whatever the header claimed.
    assert codes.count(401) <= 5
    assert codes.count(429) >= 5


async def test_busy_subject_never_waits_for_a_lease() -> None:
    """A large lease is topped up once half spent, so a subject spending fast always finds
    tokens at hand (the hit path's check_now never has to give up), and Redis's budget
    accounts for every token handed out."""
    with own_prefix("lease") as prefix:
        guard = RedisGuard(make_client(REDIS_URL, 1.0))
        try:
            await _spend_fast(guard, prefix)
        finally:
            await guard.close()


async def _spend_fast(guard: RedisGuard, prefix: str) -> None:
    policy = Policy.parse("read", "100000/100000000")  # ~no refill during the test
    limiter = RateLimiter(guard, prefix, {"read": policy}, processes=1, max_lease=100)
    first = await limiter.check(policy, "u:busy")
    assert first.allowed and first.backend == "redis"
    topped = 0
    for _ in range(1000):
        decision = limiter.check_now(policy, "u:busy")
        assert decision is not None and decision.allowed
        if limiter._topping:
            topped += 1
            await asyncio.gather(*limiter._topping)  # the round trip, awaited as an event
    assert topped >= 9  # 1,001 requests out of leases of 100, topped up at half
    lease = limiter.leases[f"{prefix}:rl:read:u:busy"]
    remaining_in_redis = lease.remaining
    # Everything Redis gave out was spent or is still in the lease: nothing lost.
    assert policy.burst - remaining_in_redis == 1001 + lease.tokens
