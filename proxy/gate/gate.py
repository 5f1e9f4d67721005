"""The gate every API request passes before anything goes upstream: verify the token, refuse a
revoked session, take one request from the caller's rate-limit budget."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDictProxy

from proxy.config import Policy
from proxy.gate.clientip import client_ip
from proxy.gate.denylist import Denylist
from proxy.gate.identity import Identity, Verifier, bearer_token
from proxy.gate.keys import DENYLIST, LIMITER, VERIFIER
from proxy.gate.leases import RateLimiter
from proxy.gate.ratelimit import Decision
from proxy.ops.errors import REST_PREFIX, ProxyError, Unauthorized
from proxy.ops.keys import TRUSTED, Network
from proxy.ops.metrics import JWT_REJECTIONS, RATE_LIMIT, child
from proxy.upstream.fairshare import TENANT

READS = frozenset({"GET", "HEAD", "OPTIONS"})
Trusted = tuple[Network, ...]
API_PREFIX = "/api/v1"  # proxy/api's (the gate may not import a surface)


class RateLimited(ProxyError):
    """429: the caller's budget is spent."""

    status = 429
    code = "rate_limited"


def tenant_of(
    identity: Identity, peer: str | None, forwarded_for: Sequence[str], trusted: Trusted
) -> str:
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


def subject_of(
    identity: Identity, peer: str | None, forwarded_for: Sequence[str], trusted: Trusted
) -> str:
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
    """The verified, unrevoked, within-budget caller; raises 401 or 429 otherwise. Once per
    request: the gate middleware calls it, a second call answers what the first decided."""
    admitted = request.get("identity")
    if isinstance(admitted, Identity):
        return admitted
    headers = request.headers
    token = await token_of(
        request, headers.getall("Authorization", []), headers.getall("apikey", [])
    )
    identity = await verified(request, token)
    request["identity"] = identity
    forwarded = request.headers.getall("X-Forwarded-For", [])
    # Whose share of PostgREST this request's upstream calls spend (this request's task only).
    TENANT.set(tenant_of(identity, request.remote, forwarded, request.app[TRUSTED]))
    subject = subject_of(identity, request.remote, forwarded, request.app[TRUSTED])
    await _limit(request, policy or ("read" if request.method in READS else "write"), subject)
    return identity


async def token_of(
    request: web.Request, authorization: Sequence[str], apikeys: Sequence[str]
) -> str:
    """The one token of a request (Authorization: Bearer, else apikey); Unauthorized otherwise,
    after the sender paid for the failed attempt (failed_attempt)."""
    try:
        return bearer_token(authorization, apikeys)
    except Unauthorized as exc:
        await failed_attempt(request, exc.reason)
        raise


async def verified(request: web.Request, token: str) -> Identity:
    """The token's identity, unrevoked; Unauthorized otherwise, after the sender paid for the
    failed attempt (a revoked token is one like a forged one). For every surface that verifies
    tokens: admit(), Realtime's socket, joins and access_token."""
    try:
        identity = await request.app[VERIFIER].verify(token)
        if request.app[DENYLIST].is_revoked(identity):
            raise Unauthorized("JWT has been revoked", reason="revoked")
    except Unauthorized as exc:
        await failed_attempt(request, exc.reason)
        raise
    return identity


async def failed_attempt(request: web.Request, reason: str) -> None:
    """A token refused (missing, malformed, forged, expired, revoked): counted by reason, and the
    sender's address spends its `auth` budget (never the user the token claims to be); raises
    RateLimited (429) once that is spent. Every surface that verifies tokens calls it: HTTP
    through admit(), Realtime's socket and joins (proxy/realtime/socket.py)."""
    JWT_REJECTIONS.labels(reason).inc()
    await _limit(request, "auth", "ip:" + _ip(request))


async def admit_preflight(request: web.Request) -> None:
    """A CORS preflight carries no credentials by design: it spends the client address's read
    budget (raises 429 once that is spent), so preflights cannot flood PostgREST."""
    await _limit(request, "read", "ip:" + _ip(request))


def identity_now(
    headers: CIMultiDictProxy[str], verifier: Verifier, denylist: Denylist
) -> Identity | None:
    """The caller as the verifier already knows it, unrevoked; None when only admit() can tell
    (no token, a token not seen yet or expired, a revoked session). For the protocol handler's
    fast paths (proxy/edge/hitpath.py, proxy/edge/relaypath.py), which cannot wait."""
    try:
        token = bearer_token(headers.getall("Authorization", []), headers.getall("apikey", []))
    except Unauthorized:
        return None
    identity = verifier.remembered(token)
    if identity is None or denylist.is_revoked(identity):
        return None
    return identity


def limit_now(
    limiter: RateLimiter | None,
    policy: Policy | None,
    identity: Identity,
    peer: str | None,
    headers: CIMultiDictProxy[str],
    trusted: Trusted,
) -> bytes | None:
    """One request from the caller's rate-limit lease, as its RateLimit header lines (b"" with no
    limiter); None when only admit() can decide (no lease at hand, or the budget may be spent)."""
    if limiter is None or policy is None:
        return b""
    subject = subject_of(identity, peer, headers.getall("X-Forwarded-For", ()), trusted)
    decision = limiter.check_now(policy, subject)
    return None if decision is None else counted(decision).header_lines()


def identity_of(request: web.Request) -> Identity:
    """The caller the gate middleware admitted (for handlers of gated routes)."""
    identity = request.get("identity")
    if not isinstance(identity, Identity):
        raise RuntimeError(f"{request.path}: a public route asked for the caller")
    return identity


def gated(request: web.Request) -> bool:
    """Whether the gate admits this request before its handler: a matched route under /rest/v1
    or /api/v1 whose handler is not marked public (`handler.public = True`). Unmatched paths
    (404, 405) and everything else (health, metrics, docs, /auth/v1, /realtime/v1, which
    verifies the token its protocol carries) pass as they are."""
    path = request.path
    if not (path.startswith(REST_PREFIX) or path.startswith(API_PREFIX)):
        return False
    info = request.match_info
    if getattr(info, "http_exception", None) is not None:
        return False
    return not getattr(info.handler, "public", False)


def gate_middleware() -> Middleware:
    """Third, after observe and error rendering: admit every gated request once (a CORS
    preflight on /rest/v1 spends its client address's budget instead), so no handler can
    forget to. Its RateLimit headers are added as the answer is prepared (`ratelimit_headers`),
    streamed answers included."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if gated(request):
            if is_preflight(request):
                await admit_preflight(request)
            else:
                await admit(request)
        return await handler(request)

    return middleware


def is_preflight(request: web.Request) -> bool:
    """A CORS preflight on /rest/v1: it carries no credentials by design, and PostgREST answers
    it."""
    return (
        request.method == "OPTIONS"
        and "Access-Control-Request-Method" in request.headers
        and request.path.startswith(REST_PREFIX)
    )


async def ratelimit_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: the RateLimit headers of the request's decision, on every answer its
    handler gave (errors are rendered without them, proxy/edge/middlewares.py; a 429 carries its
    own)."""
    decision = request.get("ratelimit")
    if decision is not None:
        response.headers.update(decision.headers())


def forget_decision(request: web.BaseRequest) -> None:
    """An error is about to be rendered in place of the handler's answer: it carries no
    RateLimit headers but its own."""
    request.pop("ratelimit", None)
