"""One LISTEN connection, kept alive: reconnects with backoff and reports each state change, so
the caller can treat any gap as "something may have been missed"."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TypeVarTuple

import psycopg

log = logging.getLogger(__name__)
Args = TypeVarTuple("Args")


async def _call(callback: Callable[[*Args], object], *args: *Args) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


async def listen_forever(
    database_url: str,
    channel: str,
    *,
    on_notify: Callable[[str], object],
    on_state: Callable[[bool], object],
    application_name: str,
    timeout_s: float = 5,
    also: Mapping[str, Callable[[str], object]] | None = None,
) -> None:
    """LISTEN on channel until cancelled; on_notify(payload) per notification, on_state(up)
    after connecting (True) and after losing the connection (False). `also` maps further
    channels to their own callbacks, on the same connection."""
    delay = 0.1
    conninfo = psycopg.conninfo.make_conninfo(
        database_url,
        application_name=application_name,
        connect_timeout=max(1, int(timeout_s)),
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
    others = dict(also or {})
    up = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                for name in (channel, *others):
                    await conn.execute(
                        psycopg.sql.SQL("listen {}").format(psycopg.sql.Identifier(name))
                    )
                up = True
                await _call(on_state, True)
                delay = 0.1
                log.info("listening on %s", channel)
                async for notify in conn.notifies():
                    await _call(others.get(notify.channel, on_notify), notify.payload)
        except (psycopg.Error, OSError) as exc:
            if up:
                log.warning("LISTEN %s lost (%s); reconnecting", channel, type(exc).__name__)
        except Exception:
            # A bug in a callback must not end listening for good (that would bypass the cache
            # for the life of the process): log it and start over.
            log.exception("LISTEN %s: unexpected error; reconnecting", channel)
        finally:
            up = False
            await _call(on_state, False)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
