"""Response cache: an in-process LRU (bounded by bytes) in front of Redis, entries stamped with
the generation vector they were built under, identical concurrent misses coalesced."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from proxy.cache.cachekey import Key, redis_key
from proxy.cache.generations import Generations
from proxy.cache.l2reads import L2Reads
from proxy.cache.uses import Uses
from proxy.ops.metrics import CACHE_STORES_DROPPED
from proxy.ops.redisconn import Client, RedisDown, RedisGuard

log = logging.getLogger(__name__)
UNSAFE = re.compile(r"[\r\n\x00]")
# Headers that belong to one response, never to the stored entry.
PER_RESPONSE = frozenset({"etag", "x-request-id", "x-cache", "content-length", "date", "server"})


@dataclass(slots=True)
class Entry:
    """A cached response, ready to send: status, headers (ETag included), body."""

    vector: tuple[int, ...]
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str
    expires: float
    # Known in this process only (not stored in Redis), for the hit path (proxy/edge/hitpath.py):
    # the tables the entry depends on, the route label it is counted under, and the status line
    # and fixed headers of a hit and of a 304, rendered once.
    deps: tuple[str, ...] = field(default=(), compare=False, repr=False)
    route: str = field(default="", compare=False, repr=False)
    wire: bytes | None = field(default=None, compare=False, repr=False)
    wire304: bytes | None = field(default=None, compare=False, repr=False)
    cost: int = field(default=0, compare=False, repr=False)  # its footprint, set by L1.put

    @classmethod
    def build(
        cls,
        vector: Iterable[int],
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        ttl_s: float,
    ) -> Entry:
        """An entry with its strong ETag (a digest of the body)."""
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        kept = tuple((k, v) for k, v in headers if k.lower() not in PER_RESPONSE)
        kept += (("ETag", etag),)
        return cls(tuple(vector), status, kept, body, etag, time.time() + ttl_s)

    def dumps(self) -> bytes:
        """Serialised for Redis: a JSON header line, then the body bytes."""
        head = [list(self.vector), self.status, [list(h) for h in self.headers], self.etag]
        return orjson.dumps([head, self.expires]) + b"\n" + self.body

    @classmethod
    def loads(cls, blob: bytes) -> Entry:
        """Inverse of dumps; raises ValueError on anything malformed."""
        line, sep, body = blob.partition(b"\n")
        if not sep:
            raise ValueError("no header line")
        (vector, status, headers, etag), expires = orjson.loads(line)
        if any(UNSAFE.search(str(part)) for pair in headers for part in pair):
            raise ValueError("a header with a line break or NUL")  # never written to a client
        return cls(
            tuple(int(v) for v in vector),
            int(status),
            tuple((str(k), str(v)) for k, v in headers),
            body,
            str(etag),
            float(expires),
        )


# What one entry costs beyond the strings and bytes it holds: the Entry object, its tuples,
# the LRU's slot and link, the hit path's rendered heads beyond their text, allocator slack.
# Measured with tracemalloc and rounded up (tests/test_cache_keys.py checks it stays above).
ENTRY_OVERHEAD = 1024
PAIR = sys.getsizeof((None, None))
RENDERED = 256  # the status line and fixed headers the hit path adds to an entry's head


def footprint(key: Key, entry: Entry) -> int:
    """What an entry costs the L1 budget: everything it keeps — the key's strings (query and
    varying headers, up to the header limits each), the stored headers (Content-Location echoes
    the query once more), the body, the ETag, the head the hit path renders from the headers
    (once more as bytes) — plus a fixed overhead, so an empty list answered a thousand times
    is not free either."""
    size = ENTRY_OVERHEAD + sys.getsizeof(entry.body) + sys.getsizeof(entry.etag)
    size += sys.getsizeof(key) + sum(sys.getsizeof(part) for part in key)
    text = RENDERED
    for name, value in entry.headers:
        size += PAIR + sys.getsizeof(name) + sys.getsizeof(value)
        text += len(name) + len(value) + 4
    return size + sys.getsizeof(entry.headers) + text


class L1:
    """LRU of entries bounded by their footprint in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[Key, Entry] = OrderedDict()

    def get(self, key: Key) -> Entry | None:
        """The entry, marked most recently used."""
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: Key, entry: Entry) -> None:
        """Insert, evicting least recently used entries beyond max_bytes."""
        self.discard(key)
        entry.cost = footprint(key, entry)
        if entry.cost > self.max_bytes:
            return
        self.entries[key] = entry
        self.size += entry.cost
        while self.size > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.size -= evicted.cost

    def discard(self, key: Key) -> None:
        """Drop one entry."""
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= old.cost

    def clear(self) -> None:
        """Drop everything (the process lost coherence)."""
        self.entries.clear()
        self.size = 0


class ResponseCache:
    """L1 + L2 lookups that honour generations, stores, and the in-flight table."""

    def __init__(
        self,
        generations: Generations,
        guard: RedisGuard[Client] | None,
        *,
        prefix: str,
        l1_bytes: int,
        max_entry_bytes: int,
        max_stores: int = 1024,
        min_uses: int = 1,
    ) -> None:
        self.generations = generations
        self.guard = guard
        self.prefix = prefix + ":c:"
        self.l1 = L1(l1_bytes)
        self.max_entry_bytes = max_entry_bytes
        self.inflight: dict[Key, asyncio.Future[Entry | None]] = {}
        # Misses waiting to be written to Redis after their answer went out (bounded: when
        # Redis is slower than the misses arrive, new ones are dropped and counted).
        self.stores: deque[tuple[Key, Entry]] = deque()
        self.max_stores = max_stores
        self.writer: asyncio.Task[None] | None = None
        self.reads = L2Reads(guard) if guard is not None else None
        self.uses = Uses(min_uses)  # a key's answer is kept from its min_uses-th request on
        generations.on_incoherent.append(self.l1.clear)

    def get_l1(self, key: Key, vector: tuple[int, ...]) -> Entry | None:
        """A current L1 entry, or None (stale ones are dropped)."""
        entry = self.l1.get(key)
        if entry is None:
            return None
        return self._current(key, entry, vector)

    def get_l1_known(self, key: Key) -> Entry | None:
        """The same for a caller that does not know the dependencies (the hit path): those the
        entry noted when it entered L1; None for an entry that noted none."""
        entry = self.l1.get(key)
        if entry is None or not entry.deps:
            return None
        return self._current(key, entry, self.generations.vector(entry.deps))

    def _current(self, key: Key, entry: Entry, vector: tuple[int, ...]) -> Entry | None:
        if entry.vector == vector and entry.expires > time.time():
            return entry
        self.l1.discard(key)
        return None

    async def get_l2(self, key: Key, vector: tuple[int, ...]) -> Entry | None:
        """A current Redis entry (promoted to L1), or None; corrupt values are misses."""
        if self.reads is None:
            return None
        # None when there is no entry or Redis is unavailable (L2Reads answers, never raises).
        blob = await self.reads.get(self.prefix + redis_key(key))
        if not isinstance(blob, bytes):
            return None
        try:
            entry = Entry.loads(blob)
        except (ValueError, TypeError, orjson.JSONDecodeError):
            log.warning("cache: unreadable entry dropped")
            return None
        if entry.vector != vector or entry.expires <= time.time():
            return None
        self.l1.put(key, entry)
        return entry

    def put(self, key: Key, entry: Entry) -> None:
        """Store in L1 now and in Redis soon after (the caller checks that the generations did
        not move while the response was being built; an entry stamped with an old vector would
        never be served). Nothing here waits: a miss is answered before Redis hears of it."""
        if len(entry.body) > self.max_entry_bytes:
            return
        self.l1.put(key, entry)
        if self.guard is None:
            return
        if len(self.stores) >= self.max_stores:
            CACHE_STORES_DROPPED.inc()  # the next identical request misses L2: harmless
            return
        self.stores.append((key, entry))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write(), name="l2-store")

    async def _write(self) -> None:
        """Drain the store queue, a pipeline of up to BATCH SETs per Redis round trip; entries
        whose generations moved meanwhile are skipped (they could never be served)."""
        guard = self.guard
        if guard is None:
            return
        await asyncio.sleep(0)  # let the misses answered in this loop turn join the first batch
        while self.stores:
            batch = [self.stores.popleft() for _ in range(min(BATCH, len(self.stores)))]
            now = time.time()
            items = [
                (self.prefix + redis_key(key), entry.dumps(), max(1, int(entry.expires - now)))
                for key, entry in batch
                if not entry.deps or self.generations.vector(entry.deps) == entry.vector
            ]
            if not items:
                continue
            try:
                await guard.run(functools.partial(_set_all, items=items))
            except RedisDown:
                pass

    async def close(self) -> None:
        """Stop the store writer (at shutdown; what it had not written is only a cache)."""
        if self.writer is not None:
            self.writer.cancel()
            await asyncio.gather(self.writer, return_exceptions=True)


BATCH = 64


async def _set_all(client: Client, items: list[tuple[str, bytes, int]]) -> None:
    pipe = client.pipeline(transaction=False)
    for name, blob, ttl in items:
        pipe.set(name, blob, ex=ttl)
    await pipe.execute()
