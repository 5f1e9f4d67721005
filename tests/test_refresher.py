"""Issue 16 point 3: without pg_cron the proxy refreshes the analytics views itself — soon after
a write (debounced) and one process at a time (advisory lock)."""

from __future__ import annotations

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from proxy.ops.refresher import APPLICATION_NAME, LOCK_KEY, relevant
from tests.support.domain import build_world
from tests.support.process import local_ports, start_proxy
from tests.support.wait import wait_until

UNITS_30D = """
select coalesce(-sum(m.quantity), 0) from public.stock_movements as m
where m.organization_id = %s and m.kind = 'sale' and m.created_at > now() - interval '30 days'
"""


def test_only_stock_and_order_changes_arm_the_refresh() -> None:
    assert relevant('{"table": "stock_movements", "op": "insert", "products": []}')
    assert relevant('{"table": "orders", "op": "update", "organizations": []}')
    assert relevant("order_items")
    assert not relevant('{"table": "analytics_views"}')  # the refresh's own notification
    assert not relevant('{"table": "notifications", "op": "insert"}')
    assert not relevant("not json {")


def test_a_sale_reaches_the_dashboard_without_a_manual_refresh(
    upstream_env, database_url, token_for, tmp_path
) -> None:
    """A sale made through /rest/v1/rpc shows in the dashboard's 30-day figures within the
    debounce, the views refreshed by the proxy alone (the interval is far longer); its live
    section (recent_movements) shows the sale at once, its summary says as of which refresh."""
    world = build_world(database_url)
    org = world.a
    env = {**upstream_env, "NIMBUS_ANALYTICS_REFRESH_S": "60", "NIMBUS_ANALYTICS_DEBOUNCE_S": "1"}
    proc, url = start_proxy(tmp_path, **env)
    try:
        headers = {"Authorization": f"Bearer {token_for(org.users['staff'])}"}

        def dashboard() -> dict:
            r = httpx.post(url + "/rest/v1/rpc/dashboard", json={}, headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        before = dashboard()
        order = httpx.post(
            url + "/rest/v1/rpc/create_order",
            json={
                "kind": "sales",
                "location_id": org.locations["WH1"],
                "items": [{"product_id": org.products["P1"], "quantity": 7}],
            },
            headers=headers,
        )
        assert order.status_code == 200, order.text
        done = httpx.post(
            url + "/rest/v1/rpc/update_order_status",
            json={"order_id": order.json()["id"], "status": "fulfilled"},
            headers=headers,
        )
        assert done.status_code == 200, done.text
        with psycopg.connect(database_url) as conn:
            (live,) = conn.execute(UNITS_30D, (org.id,)).fetchone()
        assert before["units_30d"] < live  # the sale is not there yet
        # The live section has it at once, whether or not a refresh has run yet.
        now = dashboard()
        assert order.json()["id"] in {m["order_id"] for m in now["recent_movements"]}
        assert now["sections"]["recent_movements"]["freshness"] == "live"
        # Well within the 60 s interval: only the debounced refresh can bring it in time.
        wait_until(
            lambda: dashboard()["units_30d"] == live,
            timeout=20,
            what="the sale to reach the dashboard",
        )
        after = dashboard()
        assert after["as_of"] > before["as_of"]
        assert float(after["revenue_30d"]) > float(before["revenue_30d"])
        summary, recent = after["sections"]["summary"], after["sections"]["recent_movements"]
        assert (summary["freshness"], summary["as_of"]) == ("as_of", after["as_of"])
        assert "units_30d" in summary["keys"] and recent["freshness"] == "live"
    finally:
        assert proc.stop() == 0, proc.log()


FAST = {"NIMBUS_ANALYTICS_REFRESH_S": "0.3", "NIMBUS_ANALYTICS_DEBOUNCE_S": "0"}
RUNNING = """
    select count(*) from pg_stat_activity
    where application_name = %s and query like '%%refresh_analytics_views%%' and state = 'active'
      and datname = current_database()
"""


def running(probe: psycopg.Connection, ports: set[int] | None = None) -> int:
    """How many proxies' refreshes PostgreSQL is running now, in this test database (a `nimbus
    up` or another test run on the same server refreshes its own database's views); with
    ports, only those of the connections from these client ports (one proxy's: other proxies
    of the test session refresh too, after their stock writes)."""
    query, params = RUNNING, [APPLICATION_NAME]
    if ports is not None:
        query += " and client_port = any(%s)"
        params.append(sorted(ports))
    return probe.execute(query, params).fetchone()[0]


def earlier_refreshes_done(probe: psycopg.Connection) -> None:
    """A refresh an earlier test's proxy started may still run in its backend (on a database
    full of other tests' data it takes seconds): it must not be counted as one of a test's."""
    wait_until(lambda: running(probe) == 0, timeout=120, what="an earlier refresh to finish")


def refreshes(url: str) -> dict[str, float]:
    """nimbus_analytics_refreshes_total by outcome, from a proxy's /metrics."""
    text = httpx.get(url + "/metrics").text
    return {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "nimbus_analytics_refreshes_total"
    }


def test_two_proxies_refresh_one_at_a_time(upstream_env, database_url, tmp_path_factory) -> None:
    """While one proxy's refresh is held up (its log table locked by this test) it keeps the
    advisory lock: the other proxy's turns are skipped as busy, never a second refresh at once;
    once let go, the refresh completes."""
    env = {**upstream_env, **FAST}
    with (
        psycopg.connect(database_url) as blocker,
        psycopg.connect(database_url, autocommit=True) as probe,
    ):
        earlier_refreshes_done(probe)
        (as_of,) = probe.execute(
            "select max(refreshed_at) from private.analytics_refreshes"
        ).fetchone()
        blocker.execute("lock table private.analytics_refreshes in share mode")
        procs = []
        try:
            for i in range(2):
                procs.append(start_proxy(tmp_path_factory.mktemp(f"refresher-{i}"), **env)[0])

            def held_up() -> bool:
                n = running(probe)
                assert n <= 1, "two refreshes at once"
                return n == 1

            wait_until(held_up, timeout=20, what="one proxy's refresh to wait on the lock")
            (free,) = probe.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            assert free is False  # the refreshing proxy holds it

            def others_skipped() -> bool:
                held_up()
                return sum(refreshes(p.url).get("busy", 0) for p in procs) >= 3

            wait_until(others_skipped, timeout=20, what="the other proxy's turns to be skipped")
            assert sum(refreshes(p.url).get("refreshed", 0) for p in procs) == 0
            blocker.rollback()  # let the held-up refresh finish
            wait_until(
                lambda: probe.execute(
                    "select max(refreshed_at) > %s from private.analytics_refreshes", (as_of,)
                ).fetchone()[0],
                timeout=20,
                what="the refresh to complete",
            )
            wait_until(
                lambda: sum(refreshes(p.url).get("refreshed", 0) for p in procs) >= 1,
                timeout=20,
                what="a proxy to count its refresh",
            )
        finally:
            blocker.rollback()
            for proc in procs:
                assert proc.stop() == 0, proc.log()


def test_a_refresh_ends_in_postgresql_when_its_proxy_dies(
    upstream_env, database_url, tmp_path_factory
) -> None:
    """A proxy killed mid-refresh (SIGKILL: no shutdown, no cancel sent) does not leave its
    refresh running on in PostgreSQL: the session watches its client (WATCH_CLIENT) and the
    backend ends within seconds, while the lock that held it up is still held (before, it
    waited for the lock and then ran the whole refresh for nobody)."""
    env = {**upstream_env, **FAST}
    with (
        psycopg.connect(database_url) as blocker,
        psycopg.connect(database_url, autocommit=True) as probe,
    ):
        earlier_refreshes_done(probe)
        blocker.execute("lock table private.analytics_refreshes in share mode")
        proc = start_proxy(tmp_path_factory.mktemp("refresher-killed"), **env)[0]
        try:
            ports: set[int] = set()

            def waiting() -> bool:
                ports.update(local_ports(proc.process.pid))
                return running(probe, ports) == 1

            wait_until(waiting, timeout=20, what="the proxy's refresh to wait on the lock")
            proc.process.kill()
            proc.process.wait(timeout=10)
            wait_until(
                lambda: running(probe, ports) == 0,
                timeout=5,
                what="the dead proxy's refresh to end in PostgreSQL",
            )
        finally:
            blocker.rollback()
            proc.stop()
