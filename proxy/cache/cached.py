"""Serving a GET/HEAD through the cache: HIT from L1 or Redis, COALESCED onto an identical
request in flight, MISS fetched upstream and stored (in Redis after answering) — or, for a
key's first request, fetched and kept nowhere (proxy/cache/uses.py) — BYPASS when the cache
cannot be trusted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from proxy.cache.cachekey import cache_key
from proxy.cache.miss import Miss
from proxy.cache.store import Entry, ResponseCache
from proxy.ops.metrics import CACHE_RESULTS, child
from proxy.ops.observe import route_of

CACHEABLE_STATUS = frozenset({200, 206})
Fetch = Callable[[], Awaitable[web.StreamResponse]]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names etag (or is `*`), compared weakly as RFC 9110
    asks of If-None-Match: `W/"x"` names `"x"` too."""
    if not if_none_match:
        return False
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return if_none_match.strip() == "*" or etag in tags


def respond(request: web.Request, entry: Entry, state: str, level: str = "none") -> web.Response:
    """The entry as a response; 304 when If-None-Match names its ETag."""
    child(CACHE_RESULTS, state.lower(), level).inc()
    if etag_matches(request.headers.get("If-None-Match"), entry.etag):
        return web.Response(status=304, headers={"ETag": entry.etag, "X-Cache": state})
    response = web.Response(status=entry.status, headers=entry.headers, body=entry.body)
    response.headers["X-Cache"] = state
    return response


def known(entry: Entry, request: web.Request, deps: tuple[str, ...]) -> Entry:
    """Note on an entry entering L1 what the hit path needs to serve it without a route: the
    tables it depends on, and the route label this request is counted under."""
    entry.deps = deps
    entry.route = route_of(request)
    return entry


def storable(response: web.StreamResponse, max_bytes: int) -> bytes | None:
    """The body of a complete 200/206 that says nothing against caching and is not too large;
    None for any other answer."""
    if not isinstance(response, web.Response) or response.prepared:
        return None
    body = response.body
    if isinstance(body, bytes) and storable_parts(
        response.status, response.headers.items(), body, max_bytes
    ):
        return body
    return None


def storable_parts(
    status: int, headers: Iterable[tuple[str, str]], body: bytes, max_bytes: int
) -> bool:
    """The same for an answer's parts (the relay path's misses): status, header pairs, body."""
    if status not in CACHEABLE_STATUS or len(body) > max_bytes:
        return False
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            return False
        if lower == "cache-control" and ("no-store" in value.lower() or "private" in value.lower()):
            return False
    return True


def first_use(response: web.StreamResponse) -> web.StreamResponse:
    """Label the answer to a key's first request (proxy/cache/uses.py): a miss kept nowhere."""
    child(CACHE_RESULTS, "miss", "first_use").inc()
    if not response.prepared:
        response.headers["X-Cache"] = "MISS"
    return response


def bypass(response: web.StreamResponse) -> web.StreamResponse:
    """Label a response that did not involve the cache."""
    child(CACHE_RESULTS, "bypass", "none").inc()
    if not response.prepared:
        response.headers["X-Cache"] = "BYPASS"
    return response


async def serve(
    request: web.Request,
    cache: ResponseCache,
    scope: str,
    deps: tuple[str, ...],
    ttl_s: float,
    fetch: Fetch,
) -> web.StreamResponse:
    """Answer request from the cache when possible, else fetch (once per identical key)."""
    generations = cache.generations
    if not generations.coherent or "no-cache" in request.headers.get("Cache-Control", ""):
        return bypass(await fetch())
    url = request.rel_url
    key = cache_key(scope, request.method, url.raw_path, url.raw_query_string, request.headers)
    vector = generations.vector(deps)
    entry = cache.get_l1(key, vector)
    if entry is not None:
        return respond(request, entry, "HIT", "l1")
    if request.method == "HEAD":
        entry = await cache.get_l2(key, vector)
        if entry is None:
            return bypass(await fetch())
        return respond(request, known(entry, request, deps), "HIT", "l2")
    miss = Miss.plan(cache, key, vector, deps, ttl_s)
    # Asked for the first time: relayed uncached. A conditional request is a repeat (its client
    # holds an answer), answered 304 where an entry can say so.
    if miss.lead and "If-None-Match" not in request.headers and not cache.uses.wanted(key):
        return first_use(await fetch())
    if not miss.lead:  # an identical request is in flight: its answer, if still current
        shared = await miss.shared()
        if shared is not None:
            return respond(request, shared, "COALESCED")
        return bypass(await fetch())
    miss.register()
    built: Entry | None = None
    try:
        built = await cache.get_l2(key, vector)
        if built is not None:
            return respond(request, known(built, request, deps), "HIT", "l2")
        response = await fetch()
        body = storable(response, cache.max_entry_bytes)
        if body is None:
            if not response.prepared:
                response.headers["X-Cache"] = "MISS"
            child(CACHE_RESULTS, "miss", "none").inc()
            return response
        built = miss.keep(response.status, response.headers.items(), body, route_of(request))
        return respond(request, built, "MISS")
    finally:
        miss.finish(built)
