"""`/api/v1/auth/*` (me, refresh, logout) and `/auth/v1/*` forwarding to Supabase Auth."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from proxy.api import tenancy
from proxy.api.fields import Body
from proxy.api.inputs import parse_body
from proxy.api.problems import ApiError
from proxy.api.respond import envelope
from proxy.api.route import Route
from proxy.gate.denylist import revocation_id, revoked_until
from proxy.gate.gate import identity_of
from proxy.gate.keys import DENYLIST
from proxy.ops.keys import SETTINGS
from proxy.upstream.exchange import forward, origin_target
from proxy.upstream.keys import AUTH_UPSTREAM, SESSION

log = logging.getLogger(__name__)
HIDDEN_CLAIMS = frozenset({"session_id", "jti"})


class RefreshIn(Body):
    """A Supabase refresh token."""

    refresh_token: str


async def me(request: web.Request, route: Route) -> web.StreamResponse:
    """The caller's claims, memberships and active organization."""
    identity = identity_of(request)
    rows = await tenancy.memberships(request, identity)
    active = tenancy.chosen(request, identity)
    if active is not None and active not in {row["organization_id"] for row in rows}:
        active = None  # a header/claim naming an organization the caller is not a member of
    if active is None and len(rows) == 1:
        active = rows[0]["organization_id"]
    claims = {k: v for k, v in identity.claims.items() if k not in HIDDEN_CLAIMS}
    data = {
        "user_id": identity.subject,
        "role": identity.role,
        "claims": claims,
        "memberships": rows,
        "active_organization": active,
    }
    return envelope(data)


def _auth_url(request: web.Request, path: str) -> str:
    base = request.app[SETTINGS].supabase_url
    if not base:
        raise ApiError(
            501, "not_implemented", "Supabase Auth is not configured: set NIMBUS_SUPABASE_URL"
        )
    return base + path


async def _supabase(
    request: web.Request,
    path: str,
    *,
    json: object = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, object]:
    settings = request.app[SETTINGS]
    sent = {"apikey": request.headers.get("apikey") or settings.upstream_apikey}
    sent.update(headers or {})
    try:
        async with request.app[SESSION].post(
            _auth_url(request, path), headers=sent, json=json
        ) as r:
            data = await r.json(content_type=None) if r.status != 204 else None
            return r.status, data
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("supabase auth unavailable: %s", type(exc).__name__)
        raise ApiError(503, "upstream_unavailable", "Supabase Auth is unavailable") from None


async def refresh(request: web.Request, route: Route) -> web.StreamResponse:
    """Exchange a refresh token at Supabase Auth (501 when it is not configured)."""
    _auth_url(request, "")
    body = await parse_body(request, RefreshIn)
    status, data = await _supabase(
        request,
        "/auth/v1/token?grant_type=refresh_token",
        json={"refresh_token": body.refresh_token},
    )
    if status >= 400:
        raise ApiError(
            401 if status in (400, 401) else 502, "unauthorized", "Refresh token rejected", data
        )
    return envelope(data)


async def logout(request: web.Request, route: Route) -> web.StreamResponse:
    """Sign out at Supabase Auth when configured; always revoke the session here, at once."""
    identity = identity_of(request)
    rid = revocation_id(identity)
    if rid is None:
        raise ApiError(422, "validation_failed", "This token has no session_id or jti to revoke")
    settings = request.app[SETTINGS]
    until = revoked_until(identity, settings.access_token_max_ttl_s, settings.jwt_leeway_s)
    await request.app[DENYLIST].revoke(rid, until)
    if settings.supabase_url:
        await _supabase(
            request, "/auth/v1/logout", headers={"Authorization": "Bearer " + identity.token}
        )
    return envelope({"revoked": rid, "until": until, "at": time.time()})


ROUTES = [
    Route(
        "GET",
        "/auth/me",
        "custom",
        "memberships",
        "Who is calling: claims, memberships, active organization",
        "Auth",
        handler=me,
    ),
    Route(
        "POST",
        "/auth/refresh",
        "custom",
        "",
        "New tokens for a refresh token (Supabase Auth)",
        "Auth",
        handler=refresh,
        public=True,
        body=RefreshIn,
        responses=(501,),
    ),
    Route(
        "POST",
        "/auth/logout",
        "custom",
        "",
        "Sign out: the session stops working at once",
        "Auth",
        handler=logout,
    ),
]


async def auth_forward(request: web.Request) -> web.StreamResponse:
    """`/auth/v1/*` relayed to Supabase Auth unchanged (404 JSON when not configured)."""
    settings = request.app[SETTINGS]
    if not settings.supabase_url:
        raise ApiError(404, "not_found", "Supabase Auth is not configured (NIMBUS_SUPABASE_URL)")
    body = await request.read() if request.body_exists else None
    raw = request.headers.get("Authorization", "")
    token = raw[7:].strip() if raw.lower().startswith("bearer ") else None
    response = await forward(
        request,
        request.app[AUTH_UPSTREAM],
        origin_target(request),
        token=token,
        body=body,
        retry_after=settings.retry_after_s,
        apikey=settings.upstream_apikey,
    )
    if not response.prepared:
        response.headers["Cache-Control"] = "no-store"
    return response


def setup_forwarding(app: web.Application) -> None:
    """Mount /auth/v1/* (never cached)."""
    app.router.add_route("*", "/auth/v1/{tail:.*}", auth_forward)
