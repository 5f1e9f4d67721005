"""One LISTEN connection per process (proxy/ops/pglisten.py): the cache's listener, the live
notification streams, the Realtime feed and the analytics refresher all hear their channels on
it. Each had a connection of its own, so every write's notifications woke four backends and
four reads per process. (That each consumer still hears what it needs is the subject of their
own tests: tests/test_cache.py, test_notifications.py, realtime/, test_refresher.py.)"""

from __future__ import annotations

import asyncio
import os

import psycopg

from proxy.ops.pglisten import Listen
from tests.support.cached import coherent
from tests.support.process import local_ports, start_proxy
from tests.support.wait import wait_until


def listening_backends(database_url: str, pid: int) -> list[tuple[str, str]]:
    """(application_name, last query) of the database sessions of process pid that LISTEN."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "select application_name, query from pg_stat_activity"
            " where client_port = any(%s) and query ilike 'listen %%'",
            (sorted(local_ports(pid)),),
        ).fetchall()


def test_a_process_listens_on_one_connection(upstream_env, database_url, tmp_path):
    proc, url = start_proxy(
        tmp_path,
        **{
            **upstream_env,
            "NIMBUS_REDIS_URL": "redis://127.0.0.1:6379/0",
            "NIMBUS_REDIS_PREFIX": "listen-" + os.urandom(4).hex(),
            "NIMBUS_ANALYTICS_REFRESH_S": "3600",  # the refresher on too
        },
    )
    try:
        wait_until(lambda: coherent(url), what="cache coherence")
        found = listening_backends(database_url, proc.process.pid)
        assert [name for name, _ in found] == ["nimbus-listen"], found
    finally:
        proc.stop()


async def test_consumers_come_up_and_fail_alone(database_url):
    """On the shared connection, a consumer slow to come up (a catalog to load) holds up only
    its own notifications, which it then gets in order; a consumer whose handler fails is told
    of a gap (down, then up) alone, and gets what follows; the others hear everything at once
    (a cold review found the cache's invalidations waiting on Realtime's catalog load)."""
    listen = Listen(database_url, application_name="nimbus-listen-test")
    heard: dict[str, list[str]] = {"slow": [], "fast": [], "flaky": []}
    states: dict[str, list[bool]] = {name: [] for name in heard}
    release = asyncio.Event()
    arrived = asyncio.Condition()

    async def note(name: str, payload: str) -> None:
        heard[name].append(payload)
        async with arrived:
            arrived.notify_all()

    def handler(name: str):
        def on(payload: str) -> None:
            if name == "flaky" and payload == "2":
                raise ValueError("a bug in one consumer")
            asyncio.get_running_loop().create_task(note(name, payload))

        return on

    async def slow_state(up: bool) -> None:
        states["slow"].append(up)
        if up:
            await release.wait()

    listen.add({"nimbus_test_a": handler("slow")}, slow_state)

    def state(name: str):
        async def on(up: bool) -> None:
            states[name].append(up)
            async with arrived:
                arrived.notify_all()

        return on

    listen.add({"nimbus_test_a": handler("fast")}, state("fast"))
    listen.add({"nimbus_test_a": handler("flaky")}, state("flaky"))
    task = asyncio.create_task(listen.run())

    async def until(condition) -> None:
        async with asyncio.timeout(10), arrived:
            await arrived.wait_for(condition)

    try:
        await until(lambda: states["fast"] == [True] and states["flaky"] == [True])
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            for n in ("1", "2", "3"):
                await conn.execute("select pg_notify('nimbus_test_a', %s)", (n,))
        await until(lambda: heard["fast"] == ["1", "2", "3"] and heard["flaky"] == ["1", "3"])
        assert heard["slow"] == []  # still coming up
        assert states["flaky"] == [True, False, True]  # a gap for it alone
        assert states["fast"] == [True]
        release.set()
        await until(lambda: heard["slow"] == ["1", "2", "3"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert states["fast"][-1] is False and states["slow"][-1] is False  # told at the end
