"""Minting tokens shaped like the ones Supabase Auth issues (local use and tests)."""

from __future__ import annotations

import time
import uuid

import jwt

from proxy.config import Settings


def mint(
    secret: str,
    *,
    sub: str | None = None,
    role: str = "authenticated",
    org: str | None = None,
    ttl: int = 3600,
    email: str | None = None,
    extra: dict[str, object] | None = None,
) -> str:
    """An HS256 token with Supabase Auth's claims; anon keys carry no sub, aud or session."""
    now = int(time.time())
    claims: dict[str, object] = {"iss": "nimbus-local", "role": role, "iat": now, "exp": now + ttl}
    if role == "authenticated":
        claims.update(
            aud="authenticated",
            sub=sub or str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            aal="aal1",
            email=email or "",
            app_metadata={},
            user_metadata={},
            is_anonymous=False,
        )
    elif sub:
        claims["sub"] = sub
    if org:
        claims["organization_id"] = org
    claims.update(extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def probe_token(settings: Settings) -> str | None:
    """A short-lived anon token for the proxy's own readiness probe (None without a JWT secret)."""
    return mint(settings.secret, role="anon", ttl=60) if settings.jwt_secret else None
