"""Two proxy processes sharing Redis: a change reaches subscribers on both (each process LISTENs),
and a broadcast sent through one reaches the organization's sockets on the other (the Redis bus),
not another organization's."""

from __future__ import annotations

import psycopg
import pytest

from proxy.gate.tokens import mint
from tests.realtime.clients import raw_connect
from tests.support.process import start_proxies
from tests.support.redis_server import own_prefix

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def pair(postgrest, database_url: str, jwt_secret: str, tmp_path_factory):
    """Two `nimbus serve` processes on the machine's Redis, under a prefix of their own."""
    with own_prefix("realtime") as prefix:
        procs = start_proxies(
            tmp_path_factory,
            "realtime-pair",
            2,
            NIMBUS_POSTGREST_URL=postgrest.url,
            NIMBUS_DATABASE_URL=database_url,
            NIMBUS_JWT_SECRET=jwt_secret,
            NIMBUS_REDIS_URL="redis://127.0.0.1:6379/0",
            NIMBUS_REDIS_PREFIX=prefix,
            NIMBUS_ANALYTICS_REFRESH_S="0",
        )
        yield [p.url for p in procs]
        for proc in procs:
            proc.stop()


async def test_changes_and_broadcasts_reach_every_process(
    pair, world, jwt_secret, anon_key, session, database_url
):
    """Sockets of a on both processes get a's change; a broadcast from process 1 reaches a's
    socket on process 2, and b's socket there gets neither."""
    one, two = pair
    a_token = mint(jwt_secret, sub=world.a.users["viewer"])
    binding = [{"event": "UPDATE", "schema": "public", "table": "products"}]
    sender = await raw_connect(session, one, anon_key)
    same = await raw_connect(session, two, anon_key)
    other = await raw_connect(session, two, anon_key)
    try:
        assert (await sender.join("realtime:floor", a_token, binding))["status"] == "ok"
        assert (await same.join("realtime:floor", a_token, binding))["status"] == "ok"
        b_token = mint(jwt_secret, sub=world.b.users["viewer"])
        assert (await other.join("realtime:floor", b_token, binding))["status"] == "ok"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "update public.products set name = 'both processes' where id = %s",
                (world.a.products["P1"],),
            )
        await sender.until_reply(
            await sender.push(
                "realtime:floor", "broadcast", {"type": "broadcast", "event": "hi", "payload": {}}
            )
        )
        for raw in (sender, same):
            (change,) = await raw.collect("postgres_changes")
            assert change["payload"]["data"]["record"]["name"] == "both processes"
        (message,) = await same.collect("broadcast")
        assert message["payload"]["event"] == "hi"
        await other.until_reply(await other.push("phoenix", "heartbeat", {}))
        assert {m["event"] for m in other.received} <= {"system"}  # no change, no broadcast
    finally:
        for raw in (sender, same, other):
            await raw.ws.close()
