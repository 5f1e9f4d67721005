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
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping

import psycopg
from aiohttp import web

from proxy.ops.keys import SETTINGS

log = logging.getLogger(__name__)
Handler = Callable[[str], None]
State = Callable[[bool], object]


async def _state(on_state: State, up: bool) -> None:
    result = on_state(up)
    if inspect.isawaitable(result):
        await result


class _Consumer:
    """One consumer: its handlers by channel, its state callback, and — until its on_state(True)
    has returned after a (re)connect — the notifications held for it, in order."""

    __slots__ = ("backlog", "coming", "handlers", "on_state", "ready")

    def __init__(self, handlers: Mapping[str, Handler], on_state: State) -> None:
        self.handlers = dict(handlers)
        self.on_state = on_state
        self.ready = False
        self.backlog: deque[tuple[str, str]] = deque()
        self.coming: asyncio.Task[None] | None = None


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
        self.consumers: list[_Consumer] = []
        self.by_channel: dict[str, list[_Consumer]] = {}
        self.running = False

    def add(self, channels: Mapping[str, Handler], on_state: State) -> None:
        """A consumer: handler(payload) per notification on each of its channels (in the order
        they were sent, with every other channel's; handlers are plain functions, called in the
        loop turn that read the notification), on_state(up) after connecting (True: from then
        on, in order, it gets what arrived since the LISTEN) and after losing the connection
        (False). Consumers come up independently: one slow to (a catalog to load) holds up only
        its own notifications; one whose handler fails is told of a gap (False, then True)
        alone; one that fails to come up makes everyone reconnect."""
        if self.running:
            raise RuntimeError("consumers are added before the connection starts")
        consumer = _Consumer(channels, on_state)
        self.consumers.append(consumer)
        for channel in consumer.handlers:
            self.by_channel.setdefault(channel, []).append(consumer)

    def _deliver(self, consumer: _Consumer, channel: str, payload: str) -> bool:
        try:
            consumer.handlers[channel](payload)
        except Exception:
            log.exception("LISTEN: a %s notification failed; that consumer resyncs", channel)
            return False
        return True

    async def _up(self, consumer: _Consumer, conn: psycopg.AsyncConnection[object]) -> None:
        """Bring one consumer up: on_state(True), then what was held for it, then live."""
        while True:
            try:
                await _state(consumer.on_state, True)
            except Exception:
                log.exception("LISTEN: a consumer failed to come up; reconnecting")
                await conn.close()  # a gap for everyone, as a connection of its own gave it
                return
            while consumer.backlog:
                channel, payload = consumer.backlog.popleft()
                if not self._deliver(consumer, channel, payload):
                    break
            else:
                consumer.ready = True
                return
            await self._down(consumer)  # a handler failed: a gap for this consumer alone

    async def _down(self, consumer: _Consumer) -> None:
        try:
            await _state(consumer.on_state, False)
        except Exception:
            log.exception("LISTEN: a consumer failed to go down")

    async def run(self) -> None:
        """LISTEN until cancelled (with no consumer, nothing to do)."""
        self.running = True
        if not self.consumers:
            return
        names = ", ".join(self.by_channel)
        by_channel = self.by_channel
        delay = 0.1
        up = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    for name in by_channel:
                        await conn.execute(
                            psycopg.sql.SQL("listen {}").format(psycopg.sql.Identifier(name))
                        )
                    up = True
                    delay = 0.1
                    log.info("listening on %s", names)
                    for consumer in self.consumers:
                        consumer.coming = asyncio.create_task(self._up(consumer, conn))
                    async for notify in conn.notifies():
                        for consumer in by_channel.get(notify.channel, ()):
                            if not consumer.ready:
                                consumer.backlog.append((notify.channel, notify.payload))
                            elif not self._deliver(consumer, notify.channel, notify.payload):
                                consumer.ready = False
                                await self._down(consumer)
                                consumer.coming = asyncio.create_task(self._up(consumer, conn))
            except (psycopg.Error, OSError) as exc:
                if up:
                    log.warning("LISTEN %s lost (%s); reconnecting", names, type(exc).__name__)
            except Exception:
                # Never end listening for good (the cache would be bypassed for the life of the
                # process): log it and start over, a gap for all.
                log.exception("LISTEN %s: unexpected error; reconnecting", names)
            finally:
                up = False
                for consumer in self.consumers:
                    if consumer.coming is not None:
                        consumer.coming.cancel()
                        await asyncio.gather(consumer.coming, return_exceptions=True)
                        consumer.coming = None
                    consumer.ready = False
                    consumer.backlog.clear()
                    await self._down(consumer)
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
