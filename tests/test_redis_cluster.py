"""The cache, the rate limiter and revocation against a local 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import aiohttp
import httpx
import pytest

from proxy.gate.tokens import mint
from proxy.local.localstack import free_port
from tests.support.cached import coherent
from tests.support.process import start_proxy
from tests.support.redis_server import RedisCluster
from tests.support.wait import wait_until

PATH = "/rest/v1/test_items?select=id,qty&order=id&limit=5"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three redis-server processes joined into a cluster; stopped by PID afterwards."""
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield nodes
    nodes.stop()


def seeds(cluster, order: list[int]) -> str:
    """A cluster URL naming several seed nodes: indexes into the cluster's nodes, -1 for a port
    where nothing listens (a seed that is down)."""
    dead = free_port()
    ports = [dead if i < 0 else cluster.servers[i].port for i in order]
    return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)


@pytest.fixture(scope="module")
def pair(cluster, relay, postgrest, database_url, jwt_secret, tmp_path_factory):
    """Two proxies on the cluster, reads limited to 100 per 10 minutes. Each names several
    seeds, the first of one of them down, in different orders: they must still meet on one
    pub/sub node (the one owning the channel's slot) and share the cache and the limits."""
    procs, urls = [], []
    for i, order in enumerate(([-1, 0, 1], [2, -1, 0])):
        proc, url = start_proxy(
            tmp_path_factory.mktemp(f"cluster-proxy-{i}"),
            NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
            NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
            NIMBUS_DATABASE_URL=database_url,
            NIMBUS_JWT_SECRET=jwt_secret,
            NIMBUS_REDIS_URL=seeds(cluster, order),
            NIMBUS_REDIS_PREFIX="cl",
            NIMBUS_RATE_LIMIT_READ="100/600",
        )
        procs.append(proc)
        urls.append(url)
    for url in urls:
        wait_until(lambda u=url: coherent(u), what="coherence on the cluster")
    yield urls
    for proc in procs:
        proc.stop()


def test_cache_hits_and_invalidation_on_cluster(pair, relay, jwt_secret) -> None:
    """An entry written by one process is a hit on the other; a write invalidates it."""
    uid = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {mint(jwt_secret, sub=uid)}"}
    with httpx.Client(headers=headers) as client:
        before = relay.requests
        assert client.get(pair[0] + PATH).headers["x-cache"] == "MISS"
        assert client.get(pair[1] + PATH).headers["x-cache"] == "HIT"
        assert relay.requests == before + 1
        name = f"cl-{uid[:8]}"
        assert client.post(pair[0] + "/rest/v1/test_items", json={"name": name}).status_code == 201
        assert client.get(pair[1] + PATH).headers["x-cache"] == "MISS"


async def test_rate_limit_exact_on_cluster(pair, jwt_secret) -> None:
    """200 concurrent requests over two processes: exactly 100 allowed."""
    headers = {"Authorization": f"Bearer {mint(jwt_secret, sub=str(uuid.uuid4()))}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def get(i: int) -> int:
            async with session.get(pair[i % 2] + PATH + f"&offset={i}") as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(get(i) for i in range(200)))
    assert statuses.count(200) == 100
    assert statuses.count(429) == 100


def test_revocation_on_cluster(pair, cluster, jwt_secret) -> None:
    """`nimbus revoke` against the cluster reaches both processes."""
    session_id = str(uuid.uuid4())
    token = mint(jwt_secret, sub=str(uuid.uuid4()), extra={"session_id": session_id})
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(pair[0] + PATH, headers=headers).status_code == 200
    done = subprocess.run(
        [sys.executable, "-m", "proxy.local.cli", "revoke", "--session", session_id],
        env={
            **os.environ,
            "NIMBUS_REDIS_URL": seeds(cluster, [-1, 1]),
            "NIMBUS_REDIS_PREFIX": "cl",
            "NIMBUS_JWT_SECRET": jwt_secret,
        },
        check=True,
        capture_output=True,
        timeout=30,
    )
    # Both processes subscribe where the command published: it counted them.
    assert b"2 process(es) notified" in done.stdout
    wait_until(
        lambda: all(httpx.get(u + PATH, headers=headers).status_code == 401 for u in pair),
        timeout=1,
        what="revocation on both processes",
    )


async def test_every_seed_list_finds_the_same_pubsub_node(cluster) -> None:
    """Seeds in any order, some down, lead to one pub/sub node; doctor accepts such a URL."""
    from proxy.local.doctor_services import check_redis
    from proxy.ops.redisconn import locate_pubsub

    found = {
        await locate_pubsub(seeds(cluster, order), "cl:events", 0.5)
        for order in ([-1, 0], [1, -1, 2], [2], [-1, -1, 1, 0])
    }
    assert len(found) == 1
    assert found.pop()[1] in {s.port for s in cluster.servers}
    check = check_redis(seeds(cluster, [-1, 2, 0]), "redis")
    assert check.ok, check.line()
