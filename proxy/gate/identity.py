"""Who is calling: JWT verification (HS256 secret and/or JWKS), memoised per token."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson

from proxy.gate.jwks import JWKS, VerifyKey
from proxy.ops.errors import Unauthorized

ASYMMETRIC = frozenset({"ES256", "RS256"})
# Claims that change with every token of the same session; the cache scope leaves them out.
VOLATILE_CLAIMS = frozenset({"exp", "iat", "nbf", "jti", "session_id"})


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller: the token to forward, its claims, and its role."""

    token: str
    claims: dict[str, Any] = field(hash=False)
    role: str
    exp: float
    scope: str  # digest of the stable claims: the cache's notion of "who"

    @property
    def subject(self) -> str | None:
        """The user id (`sub`), None for anon keys."""
        return self.claims.get("sub")


class Verifier:
    """Verifies tokens per DESIGN §4; raises Unauthorized with a reason on any doubt."""

    def __init__(
        self,
        *,
        secret: str | None,
        jwks: JWKS | None,
        audience: str,
        leeway_s: int,
        allowed_roles: tuple[str, ...],
        max_bytes: int,
        memo_size: int,
    ) -> None:
        self.secret = secret
        self.jwks = jwks
        self.audience = audience
        self.leeway_s = leeway_s
        self.allowed_roles = allowed_roles
        self.max_bytes = max_bytes
        self.memo_size = memo_size
        self._memo: dict[str, Identity] = {}

    def remembered(self, token: str) -> Identity | None:
        """The memoised Identity for token while it has not expired (no I/O, no decoding)."""
        hit = self._memo.get(token)
        if hit is not None and time.time() <= hit.exp + self.leeway_s:
            return hit
        return None

    async def verify(self, token: str) -> Identity:
        """The Identity for token, from the memo while it has not expired."""
        hit = self.remembered(token)
        if hit is not None:
            return hit
        if self._memo.pop(token, None) is not None:
            raise Unauthorized("JWT expired", reason="expired")
        identity = await self._verify(token)
        if self.memo_size:
            if len(self._memo) >= self.memo_size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[token] = identity
        return identity

    async def _key_for(self, token: str) -> tuple[VerifyKey, str]:
        if len(token) > self.max_bytes:
            raise Unauthorized("JWT is too large", reason="too_large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("JWT is malformed", reason="malformed") from None
        alg = header.get("alg")
        if alg == "HS256" and self.secret:
            return self.secret, "HS256"
        if alg in ASYMMETRIC and self.jwks is not None:
            kid = header.get("kid")
            found = await self.jwks.get(kid) if isinstance(kid, str) else None
            if found is None:
                raise Unauthorized("JWT signing key is unknown", reason="unknown_kid")
            return found
        raise Unauthorized("JWT algorithm is not accepted", reason="bad_algorithm")

    async def _verify(self, token: str) -> Identity:
        key, alg = await self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self.leeway_s,
                options={"require": ["exp"], "verify_aud": False, "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("JWT expired", reason="expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("JWT is not valid yet", reason="not_yet_valid") from None
        except jwt.MissingRequiredClaimError:
            raise Unauthorized("JWT has no exp claim", reason="missing_exp") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("JWT signature is invalid", reason="bad_signature") from None
        except jwt.PyJWTError:
            raise Unauthorized("JWT is invalid", reason="malformed") from None
        return self._check_claims(token, claims)

    def _check_claims(self, token: str, claims: dict[str, Any]) -> Identity:
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthorized("JWT exp is not a number", reason="malformed")
        if iat is not None and (not isinstance(iat, int | float) or iat > now + self.leeway_s):
            raise Unauthorized("JWT was issued in the future", reason="not_yet_valid")
        role = claims.get("role")
        if role not in self.allowed_roles:
            raise Unauthorized("JWT role is not allowed", reason="bad_role")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if role == "authenticated" or aud is not None:
            if not isinstance(audiences, list) or self.audience not in audiences:
                raise Unauthorized("JWT audience is not accepted", reason="bad_audience")
        if role == "authenticated" and not isinstance(claims.get("sub"), str):
            raise Unauthorized("JWT has no subject", reason="missing_sub")
        return Identity(
            token=token, claims=claims, role=role, exp=float(exp), scope=scope_of(claims)
        )


def scope_of(claims: dict[str, Any]) -> str:
    """A digest of the claims that identify a principal across token refreshes (never the
    token itself, which rotates every hour)."""
    stable = {k: v for k, v in claims.items() if k not in VOLATILE_CLAIMS}
    try:
        encoded = orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits in user metadata
        encoded = json.dumps(stable, sort_keys=True, default=str).encode()
    return hashlib.blake2b(encoded, digest_size=12).hexdigest()


def bearer_token(authorization: Sequence[str], apikey: Sequence[str]) -> str:
    """The token of a request: `Authorization: Bearer`, else the `apikey` header, like Supabase."""
    if len(authorization) > 1 or len(apikey) > 1:
        raise Unauthorized("Send one Authorization header", reason="duplicate_header")
    if authorization:
        scheme, _, token = authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be a Bearer token", reason="malformed")
        return token.strip()
    if apikey and apikey[0].strip():
        return apikey[0].strip()
    raise Unauthorized("No API key or token found in the request", reason="missing")
