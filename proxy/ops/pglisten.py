"""The process's LISTEN connection, kept alive and shared: every consumer of database
notifications (the cache's listener, the live notification streams, the Realtime feed, the
analytics refresher) adds its channels and a state callback, and one connection LISTENs on all
of them. It reconnects with backoff and reports each state change to every consumer, so each can
treat any gap as "something may have been missed"; channels of one connection arrive in commit
order, whichever consumer they are for.

One connection, not one per consumer: PostgreSQL signals every listening backend for every
notification and each backend sends it to its client, where it wakes a read; every write's
statements notify nimbus_changes, which three of the consumers hear (docs/PERFORMANCE.md)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping

import psycopg
from aiohttp import web

from proxy.ops.keys import SETTINGS

log = logging.getLogger(__name__)
Handler = Callable[[str], object]
State = Callable[[bool], object]


class Listen:
    """One LISTEN connection for consumers added before run()."""

    def __init__(self, database_url: str, *, application_name: str, timeout_s: float = 5) -> None:
        self.conninfo = psycopg.conninfo.make_conninfo(
            database_url,
            application_name=application_name,
            connect_timeout=max(1, int(timeout_s)),
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        self.handlers: dict[str, list[Handler]] = {}
        self.states: list[State] = []
        self.running = False

    def add(self, channels: Mapping[str, Handler], on_state: State) -> None:
        """A consumer: handler(payload) per notification on each of its channels (in the order
        they were sent, with every other channel's), on_state(up) after connecting (True, once
        LISTENing) and after losing the connection (False)."""
        if self.running:
            raise RuntimeError("consumers are added before the connection starts")
        for channel, handler in channels.items():
            self.handlers.setdefault(channel, []).append(handler)
        self.states.append(on_state)

    async def _state(self, up: bool) -> None:
        for on_state in self.states:
            result = on_state(up)
            if inspect.isawaitable(result):
                await result

    async def run(self) -> None:
        """LISTEN until cancelled (with no consumer, nothing to do)."""
        self.running = True
        if not self.handlers:
            return
        names = ", ".join(self.handlers)
        handlers = self.handlers
        delay = 0.1
        up = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    for name in handlers:
                        await conn.execute(
                            psycopg.sql.SQL("listen {}").format(psycopg.sql.Identifier(name))
                        )
                    up = True
                    await self._state(True)
                    delay = 0.1
                    log.info("listening on %s", names)
                    async for notify in conn.notifies():
                        for handler in handlers.get(notify.channel, ()):
                            result = handler(notify.payload)
                            if inspect.isawaitable(result):
                                await result
            except (psycopg.Error, OSError) as exc:
                if up:
                    log.warning("LISTEN %s lost (%s); reconnecting", names, type(exc).__name__)
            except Exception:
                # A bug in a consumer must not end listening for good (the cache would be
                # bypassed for the life of the process): log it and start over, a gap for all.
                log.exception("LISTEN %s: unexpected error; reconnecting", names)
            finally:
                up = False
                await self._state(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


LISTEN = web.AppKey("listen", Listen)


def shared(app: web.Application) -> Listen | None:
    """The process's LISTEN connection for a consumer to add itself to (during start-up); None
    where nothing listens (no database URL, or NIMBUS_LISTEN_ENABLED off)."""
    listen = app.get(LISTEN)
    if listen is None:
        settings = app[SETTINGS]
        if not (settings.listen_enabled and settings.database_url):
            return None
        listen = app[LISTEN] = Listen(settings.database_url, application_name="nimbus-listen")
    return listen


async def listening(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, after every consumer's: the connection, started once they have all been
    added, and stopped (each told it is down) before they close."""
    listen = app.get(LISTEN)
    task = asyncio.create_task(listen.run(), name="listen") if listen is not None else None
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
