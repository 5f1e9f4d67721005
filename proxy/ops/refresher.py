"""The analytics views' refresh where pg_cron does not run it: every NIMBUS_ANALYTICS_REFRESH_S,
and NIMBUS_ANALYTICS_DEBOUNCE_S after the first stock or order change since the last refresh
(LISTEN nimbus_changes). One process of all hosts refreshes at a time: the refresh runs on a
connection holding a session advisory lock, and a process that finds it taken skips its turn
(the holder hears the same notifications, so a change it may have missed makes it go again).
Where the database has the migration's pg_cron job, the proxy leaves the schedule to it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import orjson
import psycopg
from aiohttp import web
from psycopg.rows import TupleRow

from proxy.ops.keys import SETTINGS
from proxy.ops.metrics import ANALYTICS_REFRESHES
from proxy.ops.pglisten import Listen, shared

log = logging.getLogger(__name__)

CHANNEL = "nimbus_changes"
APPLICATION_NAME = "nimbus-refresher"
# pg_try_advisory_lock(LOCK_KEY): any process refreshing the views holds it.
LOCK_KEY = 0x6E696D627573  # "nimbus"
# Writes whose tables the analytics views summarise (sql/migrations/*analytics*).
TABLES = frozenset(
    {"stock_movements", "stock_levels", "orders", "order_items", "lots", "products", "locations"}
)
# The refresh's session asks PostgreSQL to look at its client every second while a statement
# runs: a proxy stopped mid-refresh (killed, or its machine gone) does not leave the refresh
# running on in the database, holding its locks (a cancelled task already cancels its query).
# (A statement, not a startup option: poolers may refuse startup options; the advisory lock
# needs a session anyway.)
WATCH_CLIENT = "set client_connection_check_interval = 1000"
CRON_JOB = """
select exists (select from pg_catalog.pg_extension where extname = 'pg_cron')
"""
CRON_SCHEDULED = """
select exists (select from cron.job where command like '%%refresh_analytics_views%%')
"""


async def _answer(
    conn: psycopg.AsyncConnection[TupleRow], query: str, params: tuple[int, ...] | None = None
) -> bool:
    """The one boolean a `select exists` or advisory-lock query answers."""
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None  # these queries always answer one row
    return bool(row[0])


def relevant(payload: str) -> bool:
    """Whether a nimbus_changes notification is a write the analytics views summarise (not the
    refresh's own "analytics_views")."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.strip() in TABLES
    return isinstance(data, dict) and data.get("table") in TABLES


class Refresher:
    """Run until cancelled (run()); refresh_once() is one attempt, True when it refreshed."""

    def __init__(self, database_url: str, *, interval_s: float, debounce_s: float) -> None:
        self.database_url = database_url
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self.changed = asyncio.Event()
        self.by_cron = False
        self._failing = False

    def notified(self, payload: str) -> None:
        """A nimbus_changes notification: a relevant one arms the debounced refresh."""
        if not self.by_cron and relevant(payload):
            self.changed.set()

    def attach(self, listen: Listen) -> None:
        """Hear writes on the process's LISTEN connection (unless debouncing is off: < 0)."""
        if self.debounce_s >= 0:
            listen.add({CHANNEL: self.notified}, lambda _up: None)

    async def run(self) -> None:
        due = time.monotonic() + self.interval_s
        while True:
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.0, due - time.monotonic()))
                # The first change since the last refresh: let the burst finish.
                await asyncio.sleep(min(self.debounce_s, max(0.0, due - time.monotonic())))
            except TimeoutError:
                pass
            self.changed.clear()  # changes from here on make another refresh
            await self.refresh_once()
            if self.by_cron:
                log.info("pg_cron schedules the analytics refresh; the proxy leaves it")
                return
            due = time.monotonic() + self.interval_s

    async def refresh_once(self) -> bool:
        """One attempt: skipped when pg_cron has the job (sets by_cron) or another process holds
        the lock; errors are logged once until a refresh succeeds again, never raised."""
        try:
            conninfo = psycopg.conninfo.make_conninfo(
                self.database_url, application_name=APPLICATION_NAME, connect_timeout=5
            )
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(WATCH_CLIENT)
                if await _answer(conn, CRON_JOB):
                    if await _answer(conn, CRON_SCHEDULED):
                        self.by_cron = True
                        return False
                if not await _answer(conn, "select pg_try_advisory_lock(%s)", (LOCK_KEY,)):
                    ANALYTICS_REFRESHES.labels("busy").inc()
                    log.debug("analytics refresh skipped: another process is refreshing")
                    return False
                started = time.monotonic()
                await conn.execute("select private.refresh_analytics_views(true)")
                # Closing the connection releases the lock as well; say so all the same.
                await conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            ANALYTICS_REFRESHES.labels("failed").inc()
            if not self._failing:
                self._failing = True
                log.warning(
                    "analytics refresh failed (%s: %s); will retry",
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                )
            return False
        ANALYTICS_REFRESHES.labels("refreshed").inc()
        if self._failing:
            self._failing = False
            log.info("analytics refresh works again")
        log.info("analytics views refreshed in %.0f ms", (time.monotonic() - started) * 1000)
        return True


async def refresher_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the refresher's task when a database is configured and the interval is not 0."""
    settings = app[SETTINGS]
    task = None
    if settings.database_url and settings.analytics_refresh_s > 0:
        refresher = Refresher(
            settings.database_url,
            interval_s=settings.analytics_refresh_s,
            debounce_s=settings.analytics_debounce_s,
        )
        listen = shared(app)
        if listen is not None:
            refresher.attach(listen)
        task = asyncio.create_task(refresher.run(), name="analytics-refresher")
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
