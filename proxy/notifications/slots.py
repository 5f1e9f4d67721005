"""Stream slots: how many live streams each user and each organization holds, on every process.

An open stream holds one slot under its user (`u:<sub>`, else the anonymous client address) and
one under each of its organizations: members of sorted sets in Redis scored by when they lapse
(`{<prefix>:sse}:u:<sub>`, `{<prefix>:sse}:o:<org>`; one hash tag, so a Redis Cluster keeps them
on one slot for the script). One Lua script drops lapsed members, checks every cap and takes all
the slots or none, on Redis's clock. Each process renews its streams' slots every RENEW_S and
removes them when a stream ends; a process that dies frees its slots within TTL_S. Without Redis,
or while it is unavailable, the same caps hold per process (counted here in any case)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import uuid
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from proxy.ops.redisconn import Client, RedisDown, RedisGuard

log = logging.getLogger(__name__)
TTL_S = 30
RENEW_S = 10
RENEW_BATCH = 500
# KEYS: the slot keys; ARGV: member, ttl seconds, then each key's cap. 0 = taken, else the
# (1-based) index of the first key whose cap is reached (nothing taken then).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local full = redis.call('ZCARD', key) >= tonumber(ARGV[2 + i])
  if full and not redis.call('ZSCORE', key, ARGV[1]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""
# KEYS: slot keys; ARGV: ttl seconds, then the member held under each key.
RENEW = """
local t = redis.call('TIME')
local until = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, until, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[1])) + 1)
end
return 0
"""


class CapReached(Exception):
    """No slot: `kind` ("user" or "organization") holds as many streams as it may."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Slot:
    """One stream's slots: its member id and the keys it is held under (user first)."""

    member: str
    keys: tuple[str, ...]


class StreamSlots:
    """acquire(subject, organizations) -> Slot, or CapReached; release(slot)."""

    def __init__(
        self,
        guard: RedisGuard[Client] | None,
        prefix: str,
        *,
        per_user: int,
        per_organization: int,
    ) -> None:
        self.guard = guard
        self.base = "{" + prefix + ":sse}:"
        self.per_user = per_user
        self.per_organization = per_organization
        self.held: dict[str, Slot] = {}  # this process's slots, by member
        self.counts: dict[str, int] = {}  # this process's slots, per key
        self._ids = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count(1))
        self._acquire = guard.client.register_script(ACQUIRE) if guard is not None else None
        self._renew = guard.client.register_script(RENEW) if guard is not None else None

    def _caps(self, keys: tuple[str, ...]) -> list[int]:
        return [self.per_user] + [self.per_organization] * (len(keys) - 1)

    async def acquire(self, subject: str, organizations: frozenset[str]) -> Slot:
        """Slots under subject and each organization, or CapReached (nothing taken)."""
        keys = (self.base + subject, *(self.base + "o:" + org for org in sorted(organizations)))
        caps = self._caps(keys)
        for index, (key, cap) in enumerate(zip(keys, caps, strict=True)):
            if self.counts.get(key, 0) >= cap:  # this process alone is at the cap
                raise CapReached("user" if index == 0 else "organization")
        slot = Slot(next(self._ids), keys)
        guard, script = self.guard, self._acquire  # both set, or neither
        if guard is not None and script is not None:
            try:
                refused = await guard.run(
                    lambda _r: script(keys=list(keys), args=[slot.member, TTL_S, *caps])
                )
            except RedisDown:
                refused = 0  # counted per process meanwhile; renewed into Redis once it is back
            if int(refused):
                raise CapReached("user" if int(refused) == 1 else "organization")
        self.held[slot.member] = slot
        for key in keys:
            self.counts[key] = self.counts.get(key, 0) + 1
        return slot

    async def release(self, slot: Slot) -> None:
        """Give slot back (idempotent)."""
        if self.held.pop(slot.member, None) is None:
            return
        for key in slot.keys:
            left = self.counts.get(key, 0) - 1
            if left > 0:
                self.counts[key] = left
            else:
                self.counts.pop(key, None)
        if self.guard is not None:

            async def remove(client: Client) -> None:
                pipe = client.pipeline(transaction=False)
                for key in slot.keys:
                    pipe.zrem(key, slot.member)
                await pipe.execute()

            try:
                await self.guard.run(remove)
            except RedisDown:
                pass  # it lapses within TTL_S

    async def renew(self) -> None:
        """Extend every slot this process holds (also puts them back after a Redis restart)."""
        guard, script = self.guard, self._renew  # both set, or neither (no Redis: no renewal)
        if guard is None or script is None:
            return
        pairs = [(key, slot.member) for slot in tuple(self.held.values()) for key in slot.keys]
        for start in range(0, len(pairs), RENEW_BATCH):
            batch = pairs[start : start + RENEW_BATCH]
            keys: list[str] = [key for key, _ in batch]
            args: list[str | int] = [TTL_S, *(member for _, member in batch)]
            await guard.run(functools.partial(_run, script, keys, args))

    async def renew_forever(self) -> None:
        """Forever: renew this process's slots every RENEW_S."""
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self.renew()
            except RedisDown:
                log.debug("stream slots: not renewed (Redis unavailable)")


async def _run(
    script: AsyncScript, keys: list[str], args: list[str | int], _client: Client
) -> None:
    """A Lua script's call through RedisGuard.run (which hands the client in)."""
    await script(keys=keys, args=args)
