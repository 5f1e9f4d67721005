"""Reads of Redis entries, batched per event-loop turn.

Every cache miss first asks Redis whether another process has the answer (the L2). One GET per
miss costs a Redis round trip, a socket write and redis-py's call machinery each: under a burst
of misses (every request a new URL) that was a quarter of the proxy's CPU (docs/PERFORMANCE.md,
S1m). The misses that arrive in one turn of the event loop are asked for together instead: one
pipeline, one write, one read of all the answers. A miss waits at most one loop turn longer;
a lone miss is a plain GET."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from proxy.ops.redisconn import Client, RedisDown, RedisGuard


class L2Reads:
    """get(name) -> the value (bytes) or None (absent, or Redis unavailable)."""

    def __init__(self, guard: RedisGuard[Client]) -> None:
        self.guard = guard
        self.pending: list[tuple[str, asyncio.Future[bytes | None]]] = []

    def get(self, name: str) -> Awaitable[bytes | None]:
        """The value of name, asked for with the other reads of this loop turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        self.pending.append((name, future))
        if len(self.pending) == 1:
            loop.call_soon(self._flush)  # after the turn's other callbacks have asked too
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch), name="l2-reads")
        task.add_done_callback(_ignore)

    async def _send(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        names = [name for name, _ in batch]
        values: list[object]
        try:
            if len(names) == 1:
                values = [await self.guard.run(lambda r: _get_one(r, names[0]))]
            else:
                values = await self.guard.run(lambda r: _get_all(r, names))
        except RedisDown:
            values = [None] * len(batch)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(value if isinstance(value, bytes) else None)


async def _get_one(client: Client, name: str) -> object:
    return await client.get(name)


async def _get_all(client: Client, names: list[str]) -> list[object]:
    # A pipeline rather than MGET: a Redis Cluster client splits it by node.
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
    return list(await pipe.execute())


def _ignore(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # seen: its waiters have it
