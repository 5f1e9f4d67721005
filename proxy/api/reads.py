"""The generic GET handlers: lists (paginated, counted), one row by id, RPC documents."""

from __future__ import annotations

from aiohttp import web

from proxy.api import postgrest, tenancy
from proxy.api.inputs import Listing, parse_query, path_id
from proxy.api.postgrest import OBJECT
from proxy.api.problems import ApiError
from proxy.api.respond import envelope, pagination, through_cache
from proxy.api.route import Route
from proxy.gate.gate import identity_of
from proxy.gate.identity import Identity


def is_rpc(route: Route) -> bool:
    """The route reads a function, not a table."""
    return route.target.startswith("rpc/")


def scoped(route: Route, org: str | None) -> list[tuple[str, str]]:
    """The parameter that limits the request to the chosen organization, if any."""
    if org is None or route.org == "none":
        return []
    if route.org == "arg":
        return [("organization_id", org)]
    return [("organization_id", f"eq.{org}")]


def top_of(route: Route, org: str | None) -> tuple[str, str] | None:
    """(table, organization) when the read of a table is filtered to one organization."""
    if org is None or route.org != "filter" or is_rpc(route):
        return None
    return route.target, org


def select_of(route: Route, listing: Listing) -> str:
    """The route's select plus the embeds its filters need."""
    return ",".join([route.select, *listing.embeds])


async def list_rows(request: web.Request, route: Route) -> web.StreamResponse:
    """GET a page of rows with the exact total."""
    identity = identity_of(request)
    listing = parse_query(route, request.query)
    org = tenancy.chosen(request, identity)
    select = select_of(route, listing)

    async def fetch() -> web.Response:
        params = [*route.fixed, *listing.params, *scoped(route, org)]
        for spec, value in listing.resolvers:
            params.extend(await spec.resolve(request, identity, value, org))
        params.append(("select", select))
        if listing.order:
            params.append(("order", listing.order + ("" if is_rpc(route) else ",id.asc")))
        params += [
            ("limit", str(listing.limit)),
            ("offset", str((listing.page - 1) * listing.limit)),
        ]
        reply = await postgrest.call(
            request,
            identity,
            "GET",
            route.target,
            params=params,
            # Exact up to PostgREST's db-max-rows, the planner's estimate beyond: an exact count
            # of a 70k-product organization costs more than the page itself.
            headers={"Prefer": "count=estimated"},
            ok=(416,),
        )
        rows = reply.json() if reply.status != 416 else []
        return envelope(rows, pagination=pagination(listing.page, listing.limit, reply.total()))

    deps = route.dependencies(select)
    for spec, _value in listing.resolvers:
        deps = tuple(sorted({*deps, *spec.extra_deps}))
    return await through_cache(
        request, identity, deps, fetch, rpc=is_rpc(route), top=top_of(route, org)
    )


async def key_of(request: web.Request, route: Route, identity: Identity) -> str:
    """The value of route.key this request addresses (path id, or the resolved organization)."""
    if route.org == "resolve":
        return await tenancy.resolve(request, identity)
    return path_id(request)


async def get_row(request: web.Request, route: Route) -> web.StreamResponse:
    """GET one row (404 when it does not exist or is not visible to the caller)."""
    identity = identity_of(request)
    parse_query(route, request.query)
    key = await key_of(request, route, identity)
    org = tenancy.chosen(request, identity) if route.org == "filter" else None

    async def fetch() -> web.Response:
        params = [(route.key, f"eq.{key}"), ("select", route.select), *scoped(route, org)]
        reply = await postgrest.call(
            request, identity, "GET", route.target, params=params, headers={"Accept": OBJECT}
        )
        return envelope(reply.json())

    return await through_cache(
        request, identity, route.dependencies(), fetch, top=top_of(route, org)
    )


async def read_document(request: web.Request, route: Route) -> web.StreamResponse:
    """GET an RPC's result: one JSON document, or (single) its first row, 404 when none."""
    identity = identity_of(request)
    listing = parse_query(route, request.query)
    org = tenancy.chosen(request, identity)

    async def fetch() -> web.Response:
        params = [*route.fixed, *listing.params, *scoped(route, org)]
        headers = {}
        if route.single:
            params.append(("limit", "1"))
            headers["Accept"] = OBJECT
        reply = await postgrest.call(
            request, identity, "GET", route.target, params=params, headers=headers
        )
        return envelope(reply.json())

    return await through_cache(request, identity, route.dependencies(), fetch, rpc=True)


async def visible(request: web.Request, route: Route, identity: Identity, key: str) -> bool:
    """Whether the caller can read the row a write did not reach (403 vs 404)."""
    try:
        reply = await postgrest.call(
            request,
            identity,
            "GET",
            route.target,
            params=[(route.key, f"eq.{key}"), ("select", route.key)],
        )
    except ApiError:
        return False
    return bool(reply.json())
