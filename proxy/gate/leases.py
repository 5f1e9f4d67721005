"""The rate limiter: GCRA budgets in Redis, handed to each process in leases.

A request does not cost a Redis round trip: a process takes several requests' worth of a
subject's budget at once and spends it locally. Leases shrink as the budget runs out (a fraction
of what is left, divided among the processes) down to one request, so near the limit every
decision is taken in Redis and the limit stays exact; unused leases are handed back when they
expire. A large lease is topped up in the background once half of it is spent, so a busy
subject never waits for Redis at all (the hit path, which cannot wait, would otherwise send
every request that arrives during that round trip the slow way). Without Redis each process
applies its share of the limit on its own."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from dataclasses import dataclass

from redis.commands.core import AsyncScript

from proxy.config import Policy
from proxy.gate.ratelimit import GCRA, Decision, LocalGCRA
from proxy.ops.redisconn import Client, RedisDown, RedisGuard

# Leases this large are topped up before they run out; smaller ones (a budget nearly spent,
# where exactness matters more than a round trip) are not.
TOP_UP_FROM = 16


@dataclass(slots=True)
class Lease:
    """Requests this process may still allow for one subject, until `expires`."""

    tokens: int
    expires: float
    remaining: int  # what Redis said was left after granting this lease
    reset_s: int
    interval_ms: float
    burst: int
    low: int = 0  # top up in the background once fewer tokens than this are left


class RateLimiter:
    """check(policy, subject) -> Decision."""

    def __init__(
        self,
        guard: RedisGuard[Client] | None,
        prefix: str,
        policies: dict[str, Policy],
        processes: int = 1,
        *,
        lease_ttl_s: float = 1.0,
        max_lease: int = 1000,
    ) -> None:
        self.guard = guard
        self.policies = policies
        self.prefix = prefix + ":rl:"
        self.processes = max(1, processes)
        self.lease_ttl_s = lease_ttl_s
        self.max_lease = max_lease
        self.local = LocalGCRA()
        self.leases: dict[str, Lease] = {}
        # subject key -> monotonic times it may try again, and its budget is whole again
        self.denied: dict[str, tuple[float, float]] = {}
        self._fetching: dict[str, asyncio.Future[None]] = {}
        self._topping: set[asyncio.Task[None]] = set()
        self._script = guard.client.register_script(GCRA) if guard is not None else None

    def check_now(self, policy: Policy, subject: str) -> Decision | None:
        """An allowing decision taken without waiting (from a lease, or locally without Redis);
        None when only check() can decide (no lease at hand, or the budget may be spent)."""
        key = f"{self.prefix}{policy.name}:{subject}"
        if self.guard is None or not self.guard.available:
            decision = self._local(policy, key)
            return decision if decision.allowed else None
        if key in self.denied:
            return None
        return self._from_lease(policy, key)

    async def check(self, policy: Policy, subject: str) -> Decision:
        """Take one request from subject's budget under policy."""
        key = f"{self.prefix}{policy.name}:{subject}"
        if self.guard is None or not self.guard.available:
            return self._local(policy, key)
        denied = self.denied.get(key)
        if denied is not None:
            now = time.monotonic()
            until, whole = denied
            if until > now:
                # Redis said no budget before `until`: nobody can have any sooner, so no need
                # to ask again (spares Redis a round trip per refused request). The reset is
                # what Redis said, counted down (it was 0 here: "whole again now").
                retry_s, reset_s = math.ceil(until - now), math.ceil(max(0.0, whole - now))
                return Decision(False, 0, retry_s, reset_s, policy, "lease")
            del self.denied[key]
        while True:
            decision = self._from_lease(policy, key)
            if decision is not None:
                return decision
            fetching = self._fetching.get(key)
            if fetching is None:
                return await self._fetch(policy, key)
            await fetching  # one lease request per subject at a time; then try its lease

    def _from_lease(self, policy: Policy, key: str) -> Decision | None:
        """One request out of this process's lease for key, if it holds a live one."""
        lease = self.leases.get(key)
        if lease is None or lease.tokens <= 0 or lease.expires < time.monotonic():
            return None
        lease.tokens -= 1
        if lease.tokens < lease.low and key not in self._fetching:
            task = asyncio.get_running_loop().create_task(self._top_up(policy, key, lease))
            self._topping.add(task)
            task.add_done_callback(self._topping.discard)
        return Decision(True, lease.remaining + lease.tokens, 0, lease.reset_s, policy, "lease")

    async def _top_up(self, policy: Policy, key: str, lease: Lease) -> None:
        """More tokens for a lease still in use, asked for before it runs out."""
        lease.low = 0  # one top-up per lease
        try:
            granted, remaining, _retry_ms, reset_ms = await self._ask(
                policy, key, lease.remaining, 0
            )
        except RedisDown:
            return
        if granted < 1:
            return  # spent: what is left of the lease is used, then check() asks again
        if self.leases.get(key) is lease and lease.expires >= time.monotonic():
            lease.tokens += granted
        else:  # expired (and handed back) meanwhile, or replaced: these tokens start anew
            lease = self.leases[key] = Lease(granted, 0.0, 0, 0, policy.interval_ms, policy.burst)
        lease.expires = time.monotonic() + self.lease_ttl_s
        lease.remaining = remaining
        lease.reset_s = math.ceil(reset_ms / 1000)
        lease.low = granted // 2 if granted >= TOP_UP_FROM else 0

    async def _ask(self, policy: Policy, key: str, known: int, refund: int) -> list[int]:
        """One lease request to Redis (sized from `known`, what is left of the budget), handing
        back `refund` unused tokens; while it is in flight, check() waits for it rather than
        asking again. -> [granted, remaining, retry_ms, reset_ms]; raises RedisDown."""
        guard, script = self.guard, self._script
        if guard is None or script is None:  # callers ask Redis only when there is one
            raise RedisDown("no Redis")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fetching[key] = future
        wanted = max(1, min(self.max_lease, known // (2 * self.processes)))
        args = [policy.interval_ms, policy.burst, wanted, refund]
        try:
            result = await guard.run(lambda _r: script(keys=[key], args=args))
        finally:
            future.set_result(None)
            if self._fetching.get(key) is future:
                del self._fetching[key]
        return [int(x) for x in result]

    async def _fetch(self, policy: Policy, key: str) -> Decision:
        old = self.leases.pop(key, None)
        refund = old.tokens if old is not None else 0
        if old is not None:
            old.tokens = 0  # handed back here; the sweeper must not hand them back again
        known = old.remaining if old is not None else policy.burst
        try:
            granted, remaining, retry_ms, reset_ms = await self._ask(policy, key, known, refund)
        except RedisDown:
            return self._local(policy, key)
        reset_s = math.ceil(reset_ms / 1000)
        if granted < 1:
            now = time.monotonic()
            self.denied[key] = (now + retry_ms / 1000, now + reset_ms / 1000)
            return Decision(False, 0, math.ceil(retry_ms / 1000), reset_s, policy, "redis")
        if granted > 1:
            self.leases[key] = Lease(
                granted - 1,
                time.monotonic() + self.lease_ttl_s,
                remaining,
                reset_s,
                policy.interval_ms,
                policy.burst,
                granted // 2 if granted >= TOP_UP_FROM else 0,
            )
        return Decision(True, remaining + granted - 1, 0, reset_s, policy, "redis")

    def _local(self, policy: Policy, key: str) -> Decision:
        # Each process allows its share, so N processes together stay near the limit.
        n = self.processes
        allowed, remaining, retry_ms, reset_ms = self.local.take(
            key, policy.interval_ms * n, max(1, policy.burst // n)
        )
        return Decision(
            bool(allowed),
            remaining,
            math.ceil(retry_ms / 1000),
            math.ceil(reset_ms / 1000),
            policy,
            "local",
        )

    async def sweep(self) -> None:
        """Forever: hand back what expired leases did not use (so other processes can)."""
        while True:
            await asyncio.sleep(self.lease_ttl_s / 2)
            now = time.monotonic()
            for key in [k for k, (until, _) in self.denied.items() if until < now]:
                del self.denied[key]
            expired = [(k, v) for k, v in self.leases.items() if v.expires < now]
            for key, lease in expired:
                if self.leases.get(key) is not lease:
                    continue  # already replaced (and refunded) by a fetch
                del self.leases[key]
                guard, script = self.guard, self._script
                if lease.tokens > 0 and guard is not None and script is not None:
                    args = [lease.interval_ms, lease.burst, 0, lease.tokens]
                    try:
                        await guard.run(functools.partial(_refund, script, key, args))
                    except RedisDown:
                        pass


async def _refund(script: AsyncScript, key: str, args: list[float], _client: Client) -> None:
    """Hand a lease's unused tokens back (through RedisGuard.run, which passes the client)."""
    await script(keys=[key], args=args)
