"""Which organization a request acts on: `X-Organization-Id`, else the token's
`organization_id` claim, else (only when a write needs one) the caller's only membership.

Reads need no lookup: RLS already limits them to the caller's organizations, so a chosen
organization only adds an `organization_id=eq.` filter. Inserts must name the organization, so
without a header or claim the caller's memberships are read once (through PostgREST, as the
caller) and the only one is used; RLS remains the authority on whether the insert is allowed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from proxy.api import postgrest
from proxy.api.problems import ApiError, validation
from proxy.gate.identity import Identity

HEADER = "X-Organization-Id"


def cache_scope(identity: Identity, headers: Mapping[str, str]) -> str:
    """Who an /api/v1 answer is for: the principal, and the organization header (it changes the
    answer but is not one of the cache key's headers)."""
    chosen = headers.get(HEADER)
    # An empty header is not a missing one (the former is a 422): the scopes must differ.
    return identity.scope if chosen is None else identity.scope + "|" + chosen


def chosen(request: web.Request, identity: Identity) -> str | None:
    """The organization named by the header or the token; None when neither names one."""
    raw = request.headers.get(HEADER)
    if raw is not None:
        try:
            return str(uuid.UUID(raw.strip()))
        except ValueError:
            raise validation(
                [{"field": HEADER, "message": "must be a UUID"}], "Invalid organization id"
            ) from None
    claim = identity.claims.get("organization_id")
    if isinstance(claim, str):
        try:
            return str(uuid.UUID(claim))
        except ValueError:
            return None
    return None


async def memberships(request: web.Request, identity: Identity) -> list[dict[str, Any]]:
    """The caller's memberships with their organizations' names."""
    reply = await postgrest.call(
        request,
        identity,
        "GET",
        "memberships",
        params=[
            ("select", "organization_id,role,organization:organizations(name,slug)"),
            ("user_id", f"eq.{identity.subject}"),
            ("order", "created_at.asc"),
        ],
    )
    return reply.json() or []


async def resolve(request: web.Request, identity: Identity) -> str:
    """The organization a write acts on (header, claim, or the only membership); 400 if none."""
    picked = chosen(request, identity)
    if picked is not None:
        return picked
    rows = await memberships(request, identity)
    if len(rows) == 1:
        return str(rows[0]["organization_id"])
    if not rows:
        raise ApiError(400, "no_organization", "You belong to no organization")
    raise ApiError(
        400,
        "organization_required",
        "You belong to several organizations: send X-Organization-Id",
        {"organizations": [r["organization_id"] for r in rows]},
    )
