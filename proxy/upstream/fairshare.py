"""A fair share of PostgREST per tenant: at most NIMBUS_TENANT_MAX_INFLIGHT requests of one
tenant in flight upstream at once (per process); the next ones wait up to NIMBUS_TENANT_QUEUE_S
for one of them to finish, in arrival order, then are refused (429 with Retry-After).

PostgREST serves every caller from one small pool of database connections (db-pool, 10): without
this, one member firing slow requests from many connections holds them all and every other
tenant waits. The tenant is the organization named by the token's `organization_id` claim (signed,
added by a custom access token hook), else the user (`sub`), else — anonymous callers — the
client address (IPv6 by /64). The `X-Organization-Id` header is not used: anyone may send any
organization's id in it, and a member of A naming B would spend B's share.

The slot is taken around the upstream exchange only (proxy/upstream/pool.py), so cache hits and
coalesced followers never count; the tenant (proxy.gate.gate.tenant_of) travels in a context
variable set by the gate (proxy/gate/gate.py) — each aiohttp request runs in its own task, so it
is the request's own — or is passed explicitly by the relay path, which runs outside aiohttp's
request loop.
"""

from __future__ import annotations

import asyncio
import collections
from contextvars import ContextVar

from proxy.ops.errors import ProxyError
from proxy.ops.metrics import FAIR_SHARE

# The tenant the current request spends PostgREST's share of (None: not counted).
TENANT: ContextVar[str | None] = ContextVar("nimbus_tenant", default=None)


class TenantBusy(ProxyError):
    """429: the tenant already has its share of PostgREST in flight, and none came free in time."""

    status = 429
    code = "too_many_concurrent_requests"


class _Tenant:
    __slots__ = ("busy", "waiters")

    def __init__(self) -> None:
        self.busy = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()


class FairShare:
    """Per-tenant slots: `await acquire(tenant)` ... `release(tenant)`."""

    def __init__(self, *, limit: int, queue_s: float, retry_after: int) -> None:
        self.limit = limit
        self.queue_s = queue_s
        self.retry_after = retry_after
        self._tenants: dict[str, _Tenant] = {}

    def in_flight(self, tenant: str) -> int:
        """Requests of tenant holding a slot now."""
        held = self._tenants.get(tenant)
        return held.busy if held is not None else 0

    async def acquire(self, tenant: str) -> None:
        """Take one of tenant's slots, waiting in line up to queue_s; TenantBusy after that."""
        held = self._tenants.get(tenant)
        if held is None:
            held = self._tenants[tenant] = _Tenant()
        if held.busy < self.limit and not held.waiters:
            held.busy += 1
            return
        FAIR_SHARE.labels("queued").inc()
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        held.waiters.append(turn)
        timer = loop.call_later(self.queue_s, _expire, turn)
        try:
            await turn  # release() hands its slot over (busy unchanged) by resolving it
        except BaseException as exc:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.release(tenant)  # handed a slot, then cancelled: give it on
            else:
                if turn in held.waiters:  # release() may have passed over it already
                    held.waiters.remove(turn)
                self._forget(tenant, held)
            if isinstance(exc, TimeoutError):
                FAIR_SHARE.labels("refused").inc()
                raise self._busy() from None
            raise
        finally:
            timer.cancel()

    def release(self, tenant: str) -> None:
        """Give back one of tenant's slots: to the first in its line, else free it."""
        held = self._tenants[tenant]
        while held.waiters:
            turn = held.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        held.busy -= 1
        self._forget(tenant, held)

    def _forget(self, tenant: str, held: _Tenant) -> None:
        if held.busy <= 0 and not held.waiters:
            self._tenants.pop(tenant, None)

    def _busy(self) -> TenantBusy:
        return TenantBusy(
            "Too many requests of this organization are being answered at once",
            details=(
                f"at most {self.limit} requests per organization (or user, or anonymous client)"
                f" reach PostgREST at once; this one waited {self.queue_s:g}s for a turn"
            ),
            hint="Retry after the Retry-After seconds, or send fewer requests in parallel.",
            headers={"Retry-After": str(self.retry_after)},
        )


def _expire(turn: asyncio.Future[None]) -> None:
    if not turn.done():
        turn.set_exception(TimeoutError())
