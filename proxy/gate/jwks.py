"""JWKS: asymmetric verification keys by `kid`, fetched once and refetched on an unknown kid
at most once per cool-down (a flood of forged kids cannot turn into a flood of fetches)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, TypeAlias

import aiohttp
import jwt

if TYPE_CHECKING:
    from jwt.algorithms import AllowedPublicKeys

# What a token is verified with: a key from the set, or the HS256 secret.
VerifyKey: TypeAlias = "AllowedPublicKeys | str | bytes"

log = logging.getLogger(__name__)

# The algorithm is fixed by the key's type, never taken from the token.
ALG_BY_KTY = {("EC", "P-256"): "ES256", ("RSA", None): "RS256"}


def algorithm_for(jwk: dict[str, object]) -> str | None:
    """ES256 for P-256 EC keys, RS256 for RSA keys, None for anything else."""
    kty = jwk.get("kty")
    crv = jwk.get("crv") if kty == "EC" else None
    if not isinstance(kty, str) or not (crv is None or isinstance(crv, str)):
        return None
    return ALG_BY_KTY.get((kty, crv))


class JWKS:
    """A cached key set; `get(kid)` returns (key, algorithm) or None."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        cooldown_s: float,
        max_age_s: float = 600,
    ) -> None:
        self.url = url
        self.session = session
        self.cooldown_s = cooldown_s
        self.keys: dict[str, tuple[VerifyKey, str]] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.max_age_s = max_age_s
        self._background: asyncio.Task[None] | None = None

    def load(self, document: object) -> None:
        """Replace the key set with the usable keys of a JWKS document."""
        keys: dict[str, tuple[VerifyKey, str]] = {}
        listed = document.get("keys") if isinstance(document, dict) else None
        for jwk in listed if isinstance(listed, list) else []:
            if not isinstance(jwk, dict):
                continue
            alg = algorithm_for(jwk)
            kid = jwk.get("kid")
            if alg is None or not kid or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = (jwt.PyJWK(jwk, algorithm=alg).key, alg)
            except jwt.PyJWTError as exc:
                log.warning("jwks: skipping key %s: %s", kid, exc)
        self.keys = keys

    async def get(self, kid: str) -> tuple[VerifyKey, str] | None:
        """The key for kid, refetching the set when kid is unknown and the cool-down allows."""
        found = self.keys.get(kid)
        if found is not None:
            if time.monotonic() - self._fetched_at > self.max_age_s and not self._lock.locked():
                # Keys removed from the set (a compromised one) must stop verifying: refetch
                # in the background now and then, without holding this request.
                self._background = asyncio.get_running_loop().create_task(self._refresh_locked())
            return found
        async with self._lock:
            found = self.keys.get(kid)
            if found is None and time.monotonic() - self._fetched_at >= self.cooldown_s:
                await self.refresh()
                found = self.keys.get(kid)
        return found

    async def _refresh_locked(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at > self.max_age_s:
                await self.refresh()

    async def refresh(self) -> None:
        """Fetch the key set now; on failure keep the keys already known."""
        self._fetched_at = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with self.session.get(self.url, timeout=timeout) as resp:
                resp.raise_for_status()
                self.load(await resp.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("jwks: fetch failed: %s", type(exc).__name__)
