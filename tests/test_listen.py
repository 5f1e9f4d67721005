"""One LISTEN connection per process (proxy/ops/pglisten.py): the cache's listener, the live
notification streams, the Realtime feed and the analytics refresher all hear their channels on
it. Each had a connection of its own, so every write's notifications woke four backends and
four reads per process. (That each consumer still hears what it needs is the subject of their
own tests: tests/test_cache.py, test_notifications.py, realtime/, test_refresher.py.)"""

from __future__ import annotations

import os

import psycopg

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
