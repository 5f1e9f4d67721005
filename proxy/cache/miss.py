"""A read the cache could not answer from L1, and the rules every miss follows on either path
(the full path, proxy/cache/cached.py; the protocol handler's relay, proxy/edge/relaypath.py):

- one request per key goes upstream (the lead); identical requests arriving meanwhile wait for
  its answer (followers) and take it only if it was built under the generations they saw — a
  write may have landed, and been acknowledged to its client, while the lead was in flight;
- the lead leaves the in-flight table when it is done, whatever happened, and hands its waiters
  what it built (None when nothing may be shared);
- an answer is kept (L1 now, Redis after) only when the generations it was built under have
  not moved meanwhile: an entry stamped with an old vector could never be served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.cache.cachekey import Key
from proxy.cache.store import Entry, ResponseCache


@dataclass(slots=True)
class Miss:
    """One miss: its key, the generations it is built under, the tables it depends on, how long
    it may be kept, and the future identical requests wait on — its own when it leads (lead),
    else that of the identical request in flight before it."""

    cache: ResponseCache
    key: Key
    vector: tuple[int, ...]
    deps: tuple[str, ...]
    ttl_s: float
    future: asyncio.Future[Entry | None]
    lead: bool = True

    @classmethod
    def plan(
        cls,
        cache: ResponseCache,
        key: Key,
        vector: tuple[int, ...],
        deps: tuple[str, ...],
        ttl_s: float,
    ) -> Miss:
        """A follower of the identical request in flight, else a lead (not yet registered:
        lead() does that, once the request is sure to go ahead)."""
        waiting = cache.inflight.get(key)
        if waiting is not None:
            return cls(cache, key, vector, deps, ttl_s, waiting, lead=False)
        future: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        return cls(cache, key, vector, deps, ttl_s, future)

    def register(self) -> None:
        """A lead: from here on, identical requests wait for this one."""
        if self.lead:
            self.cache.inflight[self.key] = self.future

    async def shared(self) -> Entry | None:
        """A follower's answer: the lead's entry if built under the same generations, else None
        (the follower then asks upstream itself, keeping nothing)."""
        entry = await asyncio.shield(self.future)
        return entry if entry is not None and entry.vector == self.vector else None

    def keep(
        self, status: int, headers: Iterable[tuple[str, str]], body: bytes, route: str
    ) -> Entry:
        """The entry of a storable answer (the hit path's route label and dependencies noted),
        stored when the generations have not moved since the miss began."""
        entry = Entry.build(self.vector, status, headers, body, self.ttl_s)
        entry.deps, entry.route = self.deps, route
        generations = self.cache.generations
        if generations.vector(self.deps) == self.vector and generations.coherent:
            self.cache.put(self.key, entry)  # L1 now; Redis after the answer has gone out
        return entry

    def finish(self, built: Entry | None) -> None:
        """A lead is done: out of the in-flight table, its waiters given what it built."""
        if self.lead:
            if self.cache.inflight.get(self.key) is self.future:
                del self.cache.inflight[self.key]
            if not self.future.done():
                self.future.set_result(built)
