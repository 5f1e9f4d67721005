"""LISTEN nimbus_changes: writes made anywhere but through this proxy (dashboard, SQL, cron)
reach the cache as generation bumps. One connection per process, reconnecting with backoff; a
(re)connect bumps the epoch, since anything may have changed while nobody was listening."""

from __future__ import annotations

import asyncio
import logging

import orjson
import psycopg

from proxy.generations import Generations

log = logging.getLogger(__name__)
CHANNEL = "nimbus_changes"


def table_of(payload: str) -> str | None:
    """The table named by a notification: {"table": ...} or a bare name."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.strip() or None
    if isinstance(data, dict) and isinstance(data.get("table"), str):
        return data["table"]
    return None


async def listen(database_url: str, generations: Generations, *, timeout_s: float = 5) -> None:
    """Run until cancelled."""
    delay = 0.1
    conninfo = psycopg.conninfo.make_conninfo(
        database_url,
        application_name="nimbus-listener",
        connect_timeout=max(1, int(timeout_s)),
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"listen {CHANNEL}")
                await generations.set_listener(True)
                delay = 0.1
                log.info("listener: listening on %s", CHANNEL)
                async for notify in conn.notifies():
                    table = table_of(notify.payload)
                    # Nobody waits on an external write's response here: no need for acks.
                    await generations.bump([table] if table else [], wait=False)
        except (psycopg.Error, OSError) as exc:
            if generations.listener_up:
                log.warning("listener: lost (%s); cache off until back", type(exc).__name__)
        finally:
            await generations.set_listener(False)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
