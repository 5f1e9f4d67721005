"""Proxies with the cache on, for the cache tests: whether one can be trusted yet, what it
stored in Redis, and one behind a relay that loses chosen answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from tests.support.process import start_proxies, start_proxy
from tests.support.redis_server import SHARED_REDIS, own_prefix
from tests.support.relay import CountingRelay
from tests.support.wait import wait_until


def coherent(base: str) -> bool:
    """The proxy says its cache can be trusted (subscribed and listening)."""
    try:
        body = httpx.get(base + "/ready", timeout=2).json()
    except httpx.HTTPError:
        return False
    return bool(body["checks"].get("cache", {}).get("coherent"))


def stored(prefix: str) -> int:
    """How many entries Redis holds under prefix."""
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        return sum(1 for _ in client.scan_iter(match=prefix + ":c:*"))
    finally:
        client.close()


def coherent_proxies(
    tmp_path_factory, name: str, prefix: str, count: int = 2, **env: str
) -> Iterator[list[str]]:
    """count `nimbus serve` processes sharing one Redis prefix (of the shared Redis), once each
    says its cache is coherent: yields their URLs (a fixture's body), stops them after — also
    when one never became coherent, so that none outlives its module."""
    procs = start_proxies(
        tmp_path_factory,
        name,
        count,
        **env,
        NIMBUS_REDIS_URL=SHARED_REDIS,
        NIMBUS_REDIS_PREFIX=prefix,
    )
    try:
        for proc in procs:
            wait_until(lambda u=proc.url: coherent(u), what="cache coherence")
        yield [proc.url for proc in procs]
    finally:
        for proc in procs:
            proc.stop()


@contextmanager
def behind_lossy_relay(
    state_dir: Path, postgrest, database_url: str, jwt_secret: str, drop_answer_to: bytes, **env
) -> Iterator[tuple[str, CountingRelay]]:
    """One proxy (its own Redis prefix, analytics refreshes off) whose PostgREST answers to
    requests starting with drop_answer_to are lost on the way (relay.dropped counts them);
    yields (url, relay) once the cache is coherent, stops both after."""
    port = int(postgrest.url.rsplit(":", 1)[1])
    relay = CountingRelay("127.0.0.1", port, drop_answer_to=drop_answer_to).start()
    try:
        with own_prefix("lossy") as prefix:
            proc, url = start_proxy(
                state_dir,
                NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
                NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
                NIMBUS_DATABASE_URL=database_url,
                NIMBUS_JWT_SECRET=jwt_secret,
                NIMBUS_REDIS_URL=SHARED_REDIS,
                NIMBUS_REDIS_PREFIX=prefix,
                NIMBUS_ANALYTICS_REFRESH_S="0",
                **env,
            )
            try:
                wait_until(lambda: coherent(url), what="cache coherence")
                yield url, relay
            finally:
                proc.stop()
    finally:
        relay.stop()
