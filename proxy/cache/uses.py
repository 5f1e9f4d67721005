"""How often this process has been asked for a key: the cache keeps an answer only from a key's
`min_uses`-th request on (nginx's proxy_cache_min_uses; a "doorkeeper" in cache papers).

Most keys of a real workload are asked for once (a search typed letter by letter, a report's
date range, a page no one opens twice). Keeping such an answer costs a miss about 1.6x the CPU
of relaying it (its dependencies, key, vector, ETag, the L1 entry, a Redis read before and a
Redis write after: docs/PERFORMANCE.md, S1m), and on a machine PostgREST keeps busy every proxy
CPU second is one PostgREST does not get. Nor may one-off answers push the answers clients do
repeat out of L1. So a key's first request is relayed as the pass-through relays it (answered
`X-Cache: MISS`, kept nowhere, Redis not asked), and from its second request on it takes the
cache's full path: Redis, upstream once per key, kept in L1 and Redis.

Counts are kept per process for the last `capacity` to 2 x `capacity` distinct keys (two
generations of a dict, the older dropped when the newer fills), as hashes of the key: a
collision or a forgotten count only moves a key's first stored answer by one request."""

from __future__ import annotations

from collections.abc import Hashable


class Uses:
    """wanted(key) -> True when an answer to this request should be kept."""

    def __init__(self, min_uses: int, capacity: int = 32_768) -> None:
        self.min_uses = min_uses
        self.capacity = capacity
        self.recent: dict[int, int] = {}
        self.older: dict[int, int] = {}

    def wanted(self, key: Hashable, *, count: bool = True) -> bool:
        """Count one request for key (count=False: only say); True from its min_uses-th on."""
        if self.min_uses <= 1:
            return True
        digest = hash(key)
        seen = self.recent.get(digest) or self.older.get(digest, 0)
        if seen + 1 >= self.min_uses:
            return True
        if not count:
            return False
        self.recent[digest] = seen + 1
        if len(self.recent) >= self.capacity:
            self.older, self.recent = self.recent, {}
        return False
