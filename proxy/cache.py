"""Response cache: an in-process LRU (bounded by bytes) in front of Redis, entries stamped with
the generation vector they were built under, identical concurrent misses coalesced."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from proxy.cachekey import Key, redis_key
from proxy.generations import Generations
from proxy.redisconn import RedisDown, RedisGuard

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
    # Known in this process only (not stored in Redis), for the hit path (proxy/hitpath.py): the
    # tables the entry depends on, the route label it is counted under, and the status line and
    # fixed headers of a hit and of a 304, rendered once.
    deps: tuple[str, ...] = field(default=(), compare=False, repr=False)
    route: str = field(default="", compare=False, repr=False)
    wire: bytes | None = field(default=None, compare=False, repr=False)
    wire304: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, vector, status, headers, body: bytes, ttl_s: float) -> Entry:
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


ENTRY_OVERHEAD = 1024  # key, headers and Python objects of one entry, beyond its body


def footprint(entry: Entry) -> int:
    """What an entry costs the L1 budget: its body plus a fixed overhead (an empty list
    answered a thousand times must not look free)."""
    return len(entry.body) + ENTRY_OVERHEAD


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
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= footprint(old)
        if footprint(entry) > self.max_bytes:
            return
        self.entries[key] = entry
        self.size += footprint(entry)
        while self.size > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.size -= footprint(evicted)

    def discard(self, key: Key) -> None:
        """Drop one entry."""
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= footprint(old)

    def clear(self) -> None:
        """Drop everything (the process lost coherence)."""
        self.entries.clear()
        self.size = 0


class ResponseCache:
    """L1 + L2 lookups that honour generations, stores, and the in-flight table."""

    def __init__(
        self,
        generations: Generations,
        guard: RedisGuard | None,
        *,
        prefix: str,
        l1_bytes: int,
        max_entry_bytes: int,
    ) -> None:
        self.generations = generations
        self.guard = guard
        self.prefix = prefix + ":c:"
        self.l1 = L1(l1_bytes)
        self.max_entry_bytes = max_entry_bytes
        self.inflight: dict[Key, asyncio.Future] = {}
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
        if self.guard is None:
            return None
        try:
            blob = await self.guard.run(lambda r: r.get(self.prefix + redis_key(key)))
        except RedisDown:
            return None
        if blob is None:
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

    async def put(self, key: Key, entry: Entry) -> None:
        """Store in both levels (the caller checks that the generations did not move while the
        response was being built; an entry stamped with an old vector would never be served)."""
        if len(entry.body) > self.max_entry_bytes:
            return
        self.l1.put(key, entry)
        if self.guard is None:
            return
        ttl = max(1, int(entry.expires - time.time()))
        try:
            name = self.prefix + redis_key(key)
            await self.guard.run(lambda r: r.set(name, entry.dumps(), ex=ttl))
        except RedisDown:
            pass
