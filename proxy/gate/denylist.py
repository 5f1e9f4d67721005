"""Revoked sessions: `<prefix>:dl:<session id>` in Redis until the token would have expired,
announced on the events channel so every process knows at once, and kept in memory so known
revocations stay enforced while Redis is down (fail closed for what we know)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from proxy.cache.generations import Announcement, Generations
from proxy.gate.identity import Identity
from proxy.ops.redisconn import Client, RedisDown, RedisGuard

log = logging.getLogger(__name__)


def revocation_id(identity: Identity) -> str | None:
    """What a logout revokes: the session (all its tokens), else the single token's jti."""
    claims = identity.claims
    value = claims.get("session_id") or claims.get("jti")
    return str(value) if value else None


def revoked_until(identity: Identity, max_ttl_s: float, leeway_s: float) -> float:
    """Until when signing out with identity must refuse its revocation id: a session's as long
    as any access token of it can still be accepted (issued up to now, living max_ttl_s, plus
    the verifier's leeway) — not just the token used, which may expire long before the one
    refreshed after it; a single token's (jti) as long as that token can be."""
    own = identity.exp + leeway_s
    if identity.claims.get("session_id"):
        return max(own, time.time() + max_ttl_s + leeway_s)
    return own


class Denylist:
    """Local set of revoked ids with their expiry, synced from Redis."""

    def __init__(self, guard: RedisGuard[Client] | None, prefix: str, bus: Generations) -> None:
        self.guard = guard
        self.prefix = prefix + ":dl:"
        self.bus = bus
        self.revoked: dict[str, float] = {}
        # Called with each revoked id as it becomes known here (live streams end at once).
        self.on_revoke: list[Callable[[str], None]] = []
        bus.on_announcement.append(self.on_announcement)
        bus.on_resync.append(self.resync)

    def on_announcement(self, data: Announcement) -> None:
        """A revocation announced by another process."""
        if "deny" in data:
            self.apply(str(data["deny"]), float(data["exp"]))

    def is_revoked(self, identity: Identity) -> bool:
        """True when the token's session (or jti) was revoked and has not expired."""
        rid = revocation_id(identity)
        if rid is None:
            return False
        exp = self.revoked.get(rid)
        if exp is None:
            return False
        if exp < time.time():
            del self.revoked[rid]
            return False
        return True

    def apply(self, rid: str, exp: float) -> None:
        """Remember a revocation (from this process, a message or the resync); forget the
        expired ones now and then, so logouts never used again do not pile up."""
        known = rid in self.revoked
        self.revoked[rid] = max(exp, self.revoked.get(rid, 0))
        if not known and exp > time.time():
            for callback in self.on_revoke:
                callback(rid)
        if len(self.revoked) % 1024 == 0:
            now = time.time()
            for old in [r for r, until in self.revoked.items() if until < now]:
                del self.revoked[old]

    async def revoke(self, rid: str, exp: float) -> None:
        """Revoke rid until exp everywhere: Redis key, announcement, and here."""
        self.apply(rid, exp)
        if self.guard is None:
            return
        ttl = max(1, int(exp - time.time()) + 1)
        try:
            await self.guard.run(lambda r: r.set(self.prefix + rid, str(exp), ex=ttl))
            await self.bus.announce({"deny": rid, "exp": exp})
        except RedisDown:
            log.warning("denylist: revocation kept in this process only (Redis unavailable)")

    async def resync(self) -> None:
        """Load every revocation Redis holds (after (re)subscribing)."""
        if self.guard is None:
            return

        async def load(client: Client) -> dict[str, float]:
            found: dict[str, float] = {}
            async for key in client.scan_iter(match=self.prefix + "*", count=1000):
                value = await client.get(key)
                if value is not None:
                    found[key.decode()[len(self.prefix) :]] = float(value)
            return found

        try:
            for rid, exp in (await self.guard.run(load)).items():
                self.apply(rid, exp)
        except (RedisDown, ValueError):
            log.warning("denylist: could not reload revocations")
