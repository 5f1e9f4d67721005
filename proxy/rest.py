"""`/rest/v1/*`: PostgREST semantics byte for byte, behind token verification and the cache."""

from __future__ import annotations

import re
from urllib.parse import unquote

from aiohttp import web

from proxy import cached
from proxy.dependencies import product_of, read_order, write_names
from proxy.errors import REST_PREFIX, ProxyError, database_connection_lost
from proxy.gate import admit, decorate
from proxy.keys import CACHE, SETTINGS, UPSTREAM
from proxy.upstream import forward

READS = frozenset({"GET", "HEAD"})
# PATCH/DELETE must name the rows they touch; these query parameters select, order or page but
# never filter, so a write carrying only them would change every row the caller can see.
NOT_FILTERS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
LOGIC = frozenset({"or", "and", "not.or", "not.and"})
FILTER_VALUE = re.compile(
    r"^(not\.)?(eq|neq|gt|gte|lt|lte|like|ilike|match|imatch|in|is|isdistinct|fts|plfts|phfts"
    r"|wfts|cs|cd|ov|sl|sr|nxr|nxl|adj)(\([^)]*\))?\.",
)


def refuse_unfiltered(request: web.Request) -> None:
    """400 for a PATCH/DELETE on a table or view with no row filter (PostgREST would run it)."""
    if request.method not in ("PATCH", "DELETE") or resource_of(request).startswith("rpc/"):
        return
    for key, value in request.query.items():
        if key in LOGIC or (
            key not in NOT_FILTERS and "." not in key and FILTER_VALUE.match(value)
        ):
            return
    raise ProxyError(
        f"{request.method} requires a filter",
        status=400,
        code="PGRST_UNFILTERED",
        details="The request names no row filter, so it would change every row you can see.",
        hint="Add a filter such as id=eq.<id> (to mean every row, say so: id=not.is.null).",
    )


def has_dot_segments(tail: str) -> bool:
    """True when the path of a raw target (query aside) has a `.` or `..` segment."""
    path = tail.partition("?")[0]
    return any(seg in (".", "..") for seg in unquote(path).split("/"))


def upstream_target(request: web.Request) -> str:
    """What this request asks PostgREST for: raw path tail and raw query, unchanged."""
    tail = request.raw_path[len(REST_PREFIX) :]
    if has_dot_segments(tail):
        raise ProxyError("Path must not contain dot segments", status=400, code="PGRST000")
    if not tail.startswith("/"):
        tail = "/" + tail
    return tail


def is_preflight(request: web.Request) -> bool:
    """A CORS preflight: it carries no credentials by design, and PostgREST answers it."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def resource_of(request: web.Request) -> str:
    """`products` or `rpc/dashboard`: what the request addresses."""
    return request.path[len(REST_PREFIX) :].strip("/")


async def rest_handler(request: web.Request) -> web.StreamResponse:
    """Admit the caller, then answer from the cache or relay to PostgREST with its token."""
    return decorate(request, await _handle(request))


async def _handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    identity = None if is_preflight(request) else await admit(request)
    refuse_unfiltered(request)
    body = await request.read() if request.body_exists else None

    async def fetch(before_relay=None) -> web.StreamResponse:
        response = await forward(
            request,
            app[UPSTREAM],
            upstream_target(request),
            token=identity.token if identity else None,
            body=body,
            retry_after=settings.retry_after_s,
            apikey=settings.upstream_apikey,
            before_relay=before_relay,
        )
        if isinstance(response, web.Response):
            lost = database_connection_lost(response.status, response.body)
            if lost is not None:
                raise lost
        return response

    cache = app.get(CACHE)
    method = request.method
    if cache is None or identity is None:
        return await fetch()
    resource = resource_of(request)
    if method in READS:
        product = product_of(request.query.getall("product_id", []))
        deps = read_order(resource, request.query.get("select"), product)
        ttl = settings.cache_rpc_ttl_s if resource.startswith("rpc/") else settings.cache_ttl_s
        return await cached.serve(request, cache, identity.scope, deps, ttl, fetch)
    if method == "OPTIONS":
        return await fetch()
    bumped = False

    async def bump() -> None:
        nonlocal bumped
        bumped = True
        await cache.generations.bump(write_names(resource, body))

    try:
        # Bump once PostgREST has answered, before the client sees the answer (a large one is
        # streamed: the client could otherwise read stale data before the bump).
        return await fetch(before_relay=bump)
    finally:
        # Also when the write failed or timed out: over-invalidating is safe, missing one is not.
        if not bumped:
            await bump()


def setup(app: web.Application) -> None:
    """Mount the pass-through."""
    app.router.add_route("*", REST_PREFIX + "{tail:(/.*)?}", rest_handler)
