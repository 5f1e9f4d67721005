"""Shaping /api/v1 answers and passing GETs through the response cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiohttp import web

from proxy.api import tenancy
from proxy.cache import cached, tenants
from proxy.cache.dependencies import Place, acting_orgs, joined_names, target_names
from proxy.cache.keys import BUS, CACHE, MEMBERS
from proxy.cache.written import Written
from proxy.gate.identity import Identity
from proxy.ops.keys import SETTINGS

JSON = "application/json"


def envelope(
    data: Any, *, status: int = 200, pagination: dict[str, Any] | None = None
) -> web.Response:
    """`{"data": ...}` (and `pagination` for lists) as a JSON response."""
    body: dict[str, Any] = {"data": data}
    if pagination is not None:
        body["pagination"] = pagination
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON)


EXACT_UP_TO = 1000  # PostgREST's db-max-rows: `count=estimated` counts exactly up to it


def pagination(page: int, limit: int, total: int | None, exact: bool = False) -> dict[str, Any]:
    """The pagination block; `count` says whether `total` is exact or the planner's estimate
    (PostgREST's `count=estimated` is exact up to db-max-rows)."""
    count = total or 0
    return {
        "page": page,
        "limit": limit,
        "total": count,
        "pages": (count + limit - 1) // limit,
        "count": "exact" if exact or count <= EXACT_UP_TO else "estimated",
    }


async def through_cache(
    request: web.Request,
    identity: Identity,
    deps: tuple[str, ...],
    fetch: Callable[[], Awaitable[web.StreamResponse]],
    *,
    rpc: bool = False,
    top: tuple[str, str] | None = None,
) -> web.StreamResponse:
    """Serve a GET from the cache under the caller's scope (and chosen organization). Its
    generations are those of the caller's organizations (top: (table, organization) when the
    read is filtered to one; proxy/cache/tenants.py)."""
    cache = request.app.get(CACHE)
    if cache is None:
        return await fetch()
    settings = request.app[SETTINGS]
    scope = tenancy.cache_scope(identity, request.headers)
    ttl = settings.cache_rpc_ttl_s if rpc else settings.cache_ttl_s
    orgs = await request.app[MEMBERS].of(request, identity, deps)
    # No await between the memberships check above and serve() taking the vector.
    deps = tenants.read_names(deps, orgs, top, tenants.user_of(identity))
    return await cached.serve(request, cache, scope, deps, ttl, fetch)


async def written_for(
    request: web.Request,
    identity: Identity,
    tables: Iterable[str],
    *,
    named: str | None = None,
    products: tuple[str, ...] | None = None,
    places: tuple[Place, ...] | None = None,
    users: tuple[str, ...] | None = None,
    target: str = "",
) -> Written:
    """The bookkeeping of a write of tables (proxy/cache/written.py): the names it moves — the
    caller's organizations' (only the named one when the write certainly acts on it alone), the
    products' and their places' when known, and the users' whose memberships it changes (target:
    the route's, for the functions acting on other organizations than the caller's,
    proxy/cache/dependencies.acting_orgs) — and those it moves should the caller's memberships
    move before the answer."""
    orgs = await request.app[MEMBERS].of(request, identity, tables)

    def names(known: tenants.Orgs) -> set[str]:
        found = target_names(tables, products, acting_orgs(target, known), places, users)
        return found | joined_names(target, None, users)

    caller = tenants.user_of(identity)
    return Written.by_caller(
        request.app[BUS], names, orgs, named=named, resource=target, caller=caller
    )
