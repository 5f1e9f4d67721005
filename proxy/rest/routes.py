"""`/rest/v1/*`: PostgREST semantics byte for byte, behind token verification and the cache."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from proxy.cache import cached, tenants
from proxy.cache.dependencies import (
    USER_TABLES,
    one_id,
    write_names,
    write_targets,
)
from proxy.cache.generations import Generations
from proxy.cache.keys import CACHE, MEMBERS
from proxy.cache.readquery import parse_query, values
from proxy.cache.written import Written
from proxy.gate import embedlimit
from proxy.ops.errors import REST_PREFIX, ProxyError, upstream_failure
from proxy.ops.keys import SETTINGS
from proxy.rest import rootdoc
from proxy.rest.readplan import read_plan
from proxy.upstream.exchange import STREAM_THRESHOLD, forward, origin_target
from proxy.upstream.keys import UPSTREAM
from proxy.upstream.pool import Response

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
    """What this request asks PostgREST for: raw path tail and raw query, unchanged — of the
    origin form, also when the client sent the absolute form (`GET http://host/rest/v1/...`,
    which HTTP/1.1 servers must accept; raw_path is then the whole URI)."""
    tail = origin_target(request)[len(REST_PREFIX) :]
    if has_dot_segments(tail):
        raise ProxyError("Path must not contain dot segments", status=400, code="PGRST000")
    if not tail.startswith("/"):
        tail = "/" + tail
    return tail


def resource_of(request: web.Request) -> str:
    """`products` or `rpc/dashboard`: what the request addresses."""
    return request.path[len(REST_PREFIX) :].strip("/")


async def rest_handler(request: web.Request) -> web.StreamResponse:
    """Answer the admitted caller (proxy/gate/gate.py) from the cache, or relay to PostgREST
    with its token."""
    app = request.app
    settings = app[SETTINGS]
    identity = request.get("identity")  # None: a CORS preflight, which PostgREST answers
    refuse_unfiltered(request)
    embedlimit.check(
        request.rel_url.raw_query_string,
        max_depth=settings.max_embed_depth,
        max_embeds=settings.max_embeds,
    )
    target = upstream_target(request)  # a 400 here, before a write's bookkeeping begins
    body = await request.read() if request.body_exists else None

    # The root document is held whole, to take PostgREST's internal address out of it.
    root = request.method == "GET" and rootdoc.is_root(resource_of(request))

    async def fetch(
        before_relay: Callable[[Response], Awaitable[None]] | None = None,
        prefer: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        response = await forward(
            request,
            app[UPSTREAM],
            target,
            token=identity.token if identity else None,
            body=body,
            retry_after=settings.retry_after_s,
            apikey=settings.upstream_apikey,
            before_relay=before_relay,
            hold_up_to=rootdoc.MAX_BYTES if root else STREAM_THRESHOLD,
            prefer=prefer,
            extra=extra,
        )
        if isinstance(response, web.Response):
            held = response.body if isinstance(response.body, bytes) else b""  # HEAD, 204: none
            failure = upstream_failure(response.status, held)
            if failure is not None:
                raise failure
            if root and response.status == 200 and held:
                response.body = rootdoc.without_addresses(held)
        return response

    cache = app.get(CACHE)
    method = request.method
    if cache is None or identity is None:
        return await fetch()
    resource = resource_of(request)
    if method in READS:
        plan = read_plan(
            resource,
            request.rel_url.raw_query_string,
            settings.cache_ttl_s,
            settings.cache_rpc_ttl_s,
        )
        if plan is None:
            return cached.bypass(await fetch())
        # Per organization (proxy/cache/tenants.py): no await may come between this lookup and
        # cached.serve taking the generation vector (it checks the caller's memberships generation).
        orgs = await app[MEMBERS].of(request, identity, plan.deps)
        deps, ttl = plan.names(orgs, tenants.user_of(identity)), plan.ttl_s
        return await cached.serve(request, cache, identity.scope, deps, ttl, fetch)
    if method == "OPTIONS":
        return await fetch()
    orgs = await app[MEMBERS].of(request, identity, write_targets(resource, method))
    prefer = ",".join(request.headers.getall("Prefer", ()))
    query = request.rel_url.raw_query_string
    written = write_of(
        cache.generations,
        method,
        resource,
        query,
        prefer,
        body,
        request.headers.get("Content-Type", ""),
        orgs,
        tenants.user_of(identity),
    )

    async def settle(upstream: Response) -> None:
        # Before the client sees the answer (a large one is streamed: the client could
        # otherwise read stale data before the bump).
        await written.answered(
            upstream.status, nothing_changed=changed_nothing(method, upstream, prefer)
        )

    # PostgREST says how many rows a DELETE removed only when asked for a count: asked here
    # (and answered as if not), so that one that removed none moves nothing (changed_nothing).
    count = method == "DELETE" and "count=" not in prefer and "representation" not in prefer
    try:
        response = await fetch(
            before_relay=settle, prefer=OWN_COUNT if count else None, extra=written.headers()
        )
        if count:
            uncounted(response)
        if 400 <= response.status < 500:
            written.rolled_back()  # fetch() raised for the lost connection's 400
        elif isinstance(response, web.Response):  # held whole: not sent yet
            await written.answer(response.body if isinstance(response.body, bytes) else None)
        return response
    finally:
        await written.unsure()  # a 5xx, a timeout, a lost connection: before the error


def write_of(
    generations: Generations,
    method: str,
    resource: str,
    query: str,
    prefer: str,
    body: bytes | None,
    content_type: str,
    orgs: frozenset[str] | None,
    caller: str | None,
) -> Written:
    """A write's bookkeeping (proxy/cache/written.py) on either path that takes it (this one
    and the protocol handler's relay): the names it may move, its caller's organizations
    (orgs; None: unknown, every organization's) narrowed to the one it names, if any, and the
    users whose memberships it changes (caller: the caller's user id, tenants.user_of)."""
    body = json_body(content_type, body)
    named = named_org(method, resource, query, prefer, body)
    users = named_users(method, resource, query, prefer, body, caller)

    def names(orgs: frozenset[str] | None) -> set[str]:
        return write_names(resource, body, orgs, caller=caller, users=users, method=method)

    return Written.by_caller(
        generations, names, orgs, named=named, resource=resource, caller=caller
    )


# What a write's names read in place of a body they cannot read as PostgREST does: every
# reader of a body (named_org, named_users, the functions' arguments) trusts none with an
# escape in it, so it names nothing from it.
UNREAD = b"\\"


def json_body(content_type: str, body: bytes | None) -> bytes | None:
    """The body as a write's names may read it: a JSON one as it is (no Content-Type is JSON to
    PostgREST); any other as UNREAD (PostgREST also takes form-encoded and CSV bodies, whose
    keys it decodes: `user%5Fid=...` sets user_id where no search of the bytes sees it)."""
    media = content_type.partition(";")[0].strip().lower()
    return body if not body or media in ("", "application/json") else UNREAD


def named_org(
    method: str, resource: str, query: str, prefer: str, body: bytes | None
) -> str | None:
    """The one organization a table write certainly changes rows of: a PATCH/DELETE filtered
    to `organization_id=eq.X` (of organizations: `id=eq.X`) that does not set it, or a plain
    insert (no upsert)
    whose rows all carry the same one; None otherwise (RPCs included: a function may act on
    any organization of the caller). prefer: every Prefer header, joined (an upsert may say
    so in any of them). For both paths a write takes (this one and the protocol handler's
    relay, proxy/edge/relaypath.py)."""
    if resource.startswith("rpc/"):
        return None
    if method in ("PATCH", "DELETE"):
        column = "id" if resource == "organizations" else "organization_id"
        if body and (f'"{column}"'.encode() in body or b"\\" in body):
            return None  # it may move rows to another organization (an escape may spell it)
        params = parse_query(query)
        return None if params is None else tenants.one_org(values(params, column))
    if method == "POST" and "resolution" not in prefer:
        return tenants.named_by_body(body)
    return None


def named_users(
    method: str, resource: str, query: str, prefer: str, body: bytes | None, caller: str | None
) -> tuple[str, ...] | None:
    """The users whose rows a write of a per-user table certainly changes: for memberships, a
    PATCH/DELETE filtered to `user_id=eq.X`, or () for one filtered otherwise (its users are
    members of the organizations it changes, whose reads move with memberships#<org>: see
    dependencies.changed_names) — neither setting user_id nor organization_id, which could
    make someone a member —, or a plain insert of rows that each carry theirs (not an upsert:
    its conflict target could be any unique key added later); for a USER_TABLES table (RLS:
    only the caller's own rows), the caller; None otherwise."""
    if resource in USER_TABLES:
        return None if caller is None else (caller,)
    if resource != "memberships":
        return None
    if method in ("PATCH", "DELETE"):
        if body and (b"user_id" in body or b"\\" in body):
            return None  # it may move rows to another user (an escape may spell it)
        params = parse_query(query)
        user = None if params is None else one_id(values(params, "user_id"))
        if user is not None:
            return (user,)
        if params is None or (body and b"organization_id" in body):
            return None  # it may make its users members of another organization
        return ()
    if method == "POST" and "resolution" not in prefer:
        return tenants.carried_by_body(body, "user_id")
    return None


def changed_nothing(method: str, upstream: Response, prefer: str) -> bool:
    """A PATCH/DELETE that PostgREST says changed no row, asked for no representation (whose
    rows PostgREST filters again on their new values: an update setting the column an `or=`
    tests answers `[]`, `*/*` or `*/0`, having changed the row). A PATCH's Content-Range has the
    range `*` (`*/*`, `*/0`): PostgREST writes the range of the rows an update returned
    whether or not a count was asked for (`0-4/*` for five). A DELETE's range is `*` whatever
    it removed, so only an exact count of 0 says so (the proxy asks for one, rest_handler).
    RLS hides from an UPDATE or DELETE the rows the caller may not change, so a write aimed at
    another organization's rows changes none. prefer: every Prefer header, joined."""
    if method not in ("PATCH", "DELETE") or not 200 <= upstream.status < 300:
        return False
    if "representation" in prefer:
        return False
    content_range = upstream.header("Content-Range") or ""
    if method == "PATCH":
        return content_range.partition("/")[0].strip() == "*"
    applied = upstream.header("Preference-Applied") or ""
    total = content_range.rpartition("/")[2].strip()
    return "count=exact" in applied.replace(" ", "") and total == "0"


OWN_COUNT = "count=exact"


def uncounted(response: web.StreamResponse) -> None:
    """Take the count the proxy asked for out of an answer whose client did not ask: the total
    of Content-Range back to `*`, count=exact out of Preference-Applied (a streamed answer has
    sent its head already, but a DELETE without return=representation has no body)."""
    if response.prepared:
        return
    headers = response.headers
    content_range = headers.get("Content-Range")
    if content_range is not None:
        headers["Content-Range"] = content_range.rpartition("/")[0] + "/*"
    applied = headers.get("Preference-Applied")
    if applied is not None:
        kept = [p.strip() for p in applied.split(",") if p.strip() != OWN_COUNT]
        if kept:
            headers["Preference-Applied"] = ", ".join(kept)
        else:
            del headers["Preference-Applied"]


def setup(app: web.Application) -> None:
    """Mount the pass-through."""
    app.router.add_route("*", REST_PREFIX + "{tail:(/.*)?}", rest_handler)
