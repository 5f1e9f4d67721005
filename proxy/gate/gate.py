"""The gate every API request passes before anything goes upstream: verify the token, refuse a
revoked session, take one request from the caller's rate-limit budget."""

from __future__ import annotations

from aiohttp import web

from proxy.gate.clientip import client_ip
from proxy.gate.identity import Identity, bearer_token
from proxy.gate.keys import DENYLIST, LIMITER, VERIFIER
from proxy.gate.ratelimit import Decision
from proxy.ops.errors import ProxyError, Unauthorized
from proxy.ops.keys import TRUSTED
from proxy.ops.metrics import JWT_REJECTIONS, RATE_LIMIT, child
from proxy.upstream.fairshare import TENANT

READS = frozenset({"GET", "HEAD", "OPTIONS"})


class RateLimited(ProxyError):
    """429: the caller's budget is spent."""

    status = 429
    code = "rate_limited"


def tenant_of(identity: Identity, peer: str | None, forwarded_for, trusted) -> str:
    """Whose share a request spends: the token's organization, else the user, else the client."""
    organization = identity.claims.get("organization_id")
    if isinstance(organization, str) and organization:
        return "o:" + organization
    if identity.subject:
        return "u:" + identity.subject
    return "ip:" + client_ip(peer, forwarded_for, trusted)


def _ip(request: web.Request) -> str:
    return client_ip(
        request.remote, request.headers.getall("X-Forwarded-For", []), request.app[TRUSTED]
    )


def subject_of(identity: Identity, peer: str | None, forwarded_for, trusted) -> str:
    """Whose budget a request spends: the user's, else (anon keys) the client address's."""
    if identity.subject:
        return "u:" + identity.subject
    return "ip:" + client_ip(peer, forwarded_for, trusted)


def counted(decision: Decision) -> Decision:
    """A rate-limit decision, counted in the metrics."""
    outcome = "allowed" if decision.allowed else "limited"
    child(RATE_LIMIT, decision.policy.name, outcome, decision.backend).inc()
    return decision


async def _limit(request: web.Request, policy_name: str, subject: str) -> None:
    limiter = request.app.get(LIMITER)
    if limiter is None:
        return
    decision = counted(await limiter.check(limiter.policies[policy_name], subject))
    request["ratelimit"] = decision
    if not decision.allowed:
        raise RateLimited(
            "Too many requests",
            details=f"limit {decision.policy.limit} per {decision.policy.window_s:g}s",
            headers={**decision.headers(), "Retry-After": str(max(1, decision.retry_after_s))},
        )


async def admit(request: web.Request, *, policy: str | None = None) -> Identity:
    """The verified, unrevoked, within-budget caller; raises 401 or 429 otherwise."""
    headers = request.headers
    try:
        token = bearer_token(headers.getall("Authorization", []), headers.getall("apikey", []))
        identity = await request.app[VERIFIER].verify(token)
    except Unauthorized as exc:
        JWT_REJECTIONS.labels(exc.reason).inc()
        # Failed attempts cost the client address (never the user the token claims to be).
        await _limit(request, "auth", "ip:" + _ip(request))
        raise
    if request.app[DENYLIST].is_revoked(identity):
        JWT_REJECTIONS.labels("revoked").inc()
        # A revoked token is a failed attempt like a forged one: the sender's address pays.
        await _limit(request, "auth", "ip:" + _ip(request))
        raise Unauthorized("JWT has been revoked", reason="revoked")
    request["identity"] = identity
    forwarded = request.headers.getall("X-Forwarded-For", [])
    # Whose share of PostgREST this request's upstream calls spend (this request's task only).
    TENANT.set(tenant_of(identity, request.remote, forwarded, request.app[TRUSTED]))
    subject = subject_of(identity, request.remote, forwarded, request.app[TRUSTED])
    await _limit(request, policy or ("read" if request.method in READS else "write"), subject)
    return identity


async def admit_preflight(request: web.Request) -> None:
    """A CORS preflight carries no credentials by design: it spends the client address's read
    budget (raises 429 once that is spent), so preflights cannot flood PostgREST."""
    await _limit(request, "read", "ip:" + _ip(request))


def identity_now(headers, verifier, denylist) -> Identity | None:
    """The caller as the verifier already knows it, unrevoked; None when only admit() can tell
    (no token, a token not seen yet or expired, a revoked session). For the protocol handler's
    fast paths (proxy/edge/hitpath.py, proxy/edge/relaypath.py), which cannot wait."""
    try:
        token = bearer_token(headers.getall("Authorization", ()), headers.getall("apikey", ()))
    except Unauthorized:
        return None
    identity = verifier.remembered(token)
    if identity is None or denylist.is_revoked(identity):
        return None
    return identity


def limit_now(limiter, policy, identity: Identity, peer, headers, trusted) -> bytes | None:
    """One request from the caller's rate-limit lease, as its RateLimit header lines (b"" with no
    limiter); None when only admit() can decide (no lease at hand, or the budget may be spent)."""
    if limiter is None:
        return b""
    subject = subject_of(identity, peer, headers.getall("X-Forwarded-For", ()), trusted)
    decision = limiter.check_now(policy, subject)
    return None if decision is None else counted(decision).header_lines()


def decorate(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Add the RateLimit headers of the request's decision to its response."""
    decision = request.get("ratelimit")
    if decision is not None and not response.prepared:
        response.headers.update(decision.headers())
    return response
