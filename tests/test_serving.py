"""Serving: several workers on one port, and graceful shutdown under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid

import aiohttp
import httpx
import pytest

from tests.support.process import start_proxy
from tests.support.wait import wait_until
from tests.test_relaypath import relayed_count


def test_workers_share_the_port(relay, postgrest, database_url, jwt_secret, token_for, tmp_path):
    """`--workers 2`: both processes answer on one port, /metrics sums them, SIGTERM stops all."""
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_WORKERS="2",
    )
    try:
        headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
        for _ in range(60):
            # A new connection each time, so the kernel spreads them over the workers.
            assert httpx.get(url + "/rest/v1/test_items?limit=1", headers=headers).is_success
        records = [json.loads(x) for x in proc.log().splitlines() if x.startswith("{")]
        pids = {r["pid"] for r in records if r.get("logger") == "nimbus.access"}
        assert len(pids) == 2
        metrics = httpx.get(url + "/metrics").text
        assert 'route="/rest/v1/{other}",status="200"' in metrics
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize("path", ["full", "relay"])
async def test_sigterm_finishes_started_requests(
    path, relay, postgrest, database_url, jwt_secret, token_for, tmp_path
):
    """SIGTERM while 40 slow requests run: every one of them completes with 200; exit 0. With
    the caller's token already verified, the 40 are relayed by the protocol handler
    (proxy/edge/relaypath.py) rather than taken by aiohttp's request loop: the same holds."""
    proc, url = start_proxy(
        tmp_path,
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_SHUTDOWN_GRACE_S="10",
        NIMBUS_CACHE_ENABLED="false",
        NIMBUS_HIT_PATH="true" if path == "relay" else "false",
        NIMBUS_TENANT_MAX_INFLIGHT="0",  # 40 of one user in flight at once, on purpose
    )
    headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}

    def in_flight() -> float:
        for line in httpx.get(url + "/metrics").text.splitlines():
            if line.startswith("nimbus_http_requests_in_flight "):
                return float(line.split()[1]) - 1  # minus this scrape
        return 0

    async with aiohttp.ClientSession(headers=headers) as session:
        if path == "relay":  # the token, verified: what follows is relayed
            async with session.get(url + "/rest/v1/rpc/test_slow?ms=1") as resp:
                assert resp.status == 200

        async def slow(i: int) -> int:
            async with session.get(url + f"/rest/v1/rpc/test_slow?ms={800 + i}") as resp:
                await resp.read()
                return resp.status

        tasks = [asyncio.create_task(slow(i)) for i in range(40)]
        await asyncio.to_thread(wait_until, lambda: in_flight() >= 40, 10, "40 in flight")
        relayed = relayed_count(url)
        os.kill(proc.process.pid, signal.SIGTERM)
        statuses = await asyncio.gather(*tasks)
    assert statuses == [200] * 40
    assert relayed == (40 if path == "relay" else 0)  # counted when taken, before SIGTERM
    assert await asyncio.to_thread(proc.process.wait, 15) == 0
