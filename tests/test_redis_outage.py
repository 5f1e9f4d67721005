"""Redis of the test's own, stopped and restarted: revocations reach every process and survive
the outage (fail closed for what a process knows); the cache and the limiter degrade without a
single 5xx, and nothing cached before the outage is served after it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.support.cached import coherent
from tests.support.process import start_proxy
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

PATH = "/rest/v1/test_items?select=id&limit=1"


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A Redis of this module's own, so that it can be stopped."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(own_redis, relay, postgrest, database_url, jwt_secret, tmp_path_factory):
    """Two proxy processes on the module's Redis."""
    procs, urls = [], []
    for i in range(2):
        proc, url = start_proxy(
            tmp_path_factory.mktemp(f"revoke-{i}"),
            NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
            NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
            NIMBUS_DATABASE_URL=database_url,
            NIMBUS_JWT_SECRET=jwt_secret,
            NIMBUS_REDIS_URL=own_redis.url,
            NIMBUS_REDIS_PREFIX="revoke",
        )
        procs.append(proc)
        urls.append(url)
    for url in urls:
        wait_until(lambda u=url: coherent(u), what="coherence")
    yield urls
    for proc in procs:
        proc.stop()


def revoke(redis_url: str, jwt_secret: str, session_id: str) -> str:
    """Run `nimbus revoke` as an operator would."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy.local.cli",
            "revoke",
            "--session",
            session_id,
            "--ttl",
            "600",
        ],
        env={
            **os.environ,
            "NIMBUS_REDIS_URL": redis_url,
            "NIMBUS_REDIS_PREFIX": "revoke",
            "NIMBUS_JWT_SECRET": jwt_secret,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_revoked_session_is_refused_everywhere(pair, own_redis, jwt_secret) -> None:
    """After `nimbus revoke`, every token of that session is a 401 on both processes."""
    from proxy.gate.tokens import mint

    sub, session_id = str(uuid.uuid4()), str(uuid.uuid4())
    tokens = [
        mint(jwt_secret, sub=sub, extra={"session_id": session_id}, ttl=60 + i) for i in range(2)
    ]
    other = mint(jwt_secret, sub=sub)  # another session of the same user
    for url in pair:
        assert httpx.get(url + PATH, headers={"Authorization": f"Bearer {tokens[0]}"}).is_success
    assert "2 process(es) notified" in revoke(own_redis.url, jwt_secret, session_id)

    def refused_everywhere() -> bool:
        return all(
            httpx.get(url + PATH, headers={"Authorization": f"Bearer {t}"}).status_code == 401
            for url in pair
            for t in tokens
        )

    wait_until(refused_everywhere, timeout=1, what="revocation on both processes")
    body = httpx.get(pair[0] + PATH, headers={"Authorization": f"Bearer {tokens[1]}"}).json()
    assert body["message"] == "JWT has been revoked"
    assert httpx.get(pair[1] + PATH, headers={"Authorization": f"Bearer {other}"}).is_success


def test_known_revocations_hold_while_redis_is_down(pair, own_redis, jwt_secret) -> None:
    """Redis stopped: revoked stays revoked, valid tokens still work (uncached, no 5xx)."""
    from proxy.gate.tokens import mint

    session_id = secrets.token_hex(8)
    revoked = mint(jwt_secret, sub=str(uuid.uuid4()), extra={"session_id": session_id})
    valid = mint(jwt_secret, sub=str(uuid.uuid4()))
    revoke(own_redis.url, jwt_secret, session_id)
    wait_until(
        lambda: (
            httpx.get(pair[0] + PATH, headers={"Authorization": f"Bearer {revoked}"}).status_code
            == 401
        ),
        timeout=1,
        what="revocation",
    )
    own_redis.stop()
    try:
        for _ in range(20):
            gone = httpx.get(pair[0] + PATH, headers={"Authorization": f"Bearer {revoked}"})
            ok = httpx.get(pair[0] + PATH, headers={"Authorization": f"Bearer {valid}"})
            assert gone.status_code == 401
            assert ok.status_code == 200
            assert ok.headers["x-cache"] == "BYPASS"
    finally:
        own_redis.start()
    wait_until(lambda: coherent(pair[0]) and coherent(pair[1]), what="coherence after restart")


def test_outage_serves_uncached_and_never_stale_after(
    pair, own_redis, database_url, jwt_secret
) -> None:
    """Stop Redis under load: zero 5xx, limits fall back per process; write during the outage;
    restart: the pre-outage entry is never served again."""
    import psycopg

    from proxy.gate.tokens import mint

    headers = {"Authorization": f"Bearer {mint(jwt_secret, sub=str(uuid.uuid4()))}"}
    url = "/rest/v1/test_items?select=qty&name=eq.item-011"
    first = httpx.get(pair[0] + url, headers=headers)
    assert httpx.get(pair[0] + url, headers=headers).headers["x-cache"] == "HIT"
    assert first.json() == [{"qty": 11}]
    own_redis.stop()
    try:
        statuses = []
        with httpx.Client(headers=headers) as client:
            for i in range(100):
                resp = client.get(pair[i % 2] + url)
                statuses.append(resp.status_code)
                assert "ratelimit" in resp.headers  # the per-process limiter answered
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("update public.test_items set qty = 111 where name = 'item-011'")
            for i in range(20):
                statuses.append(client.get(pair[i % 2] + url).status_code)
        assert not [s for s in statuses if s >= 500]
    finally:
        own_redis.start()
    wait_until(lambda: coherent(pair[0]) and coherent(pair[1]), what="coherence after restart")
    try:
        for proxy_url in pair:
            for _ in range(3):
                assert httpx.get(proxy_url + url, headers=headers).json() == [{"qty": 111}]
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("update public.test_items set qty = 11 where name = 'item-011'")
