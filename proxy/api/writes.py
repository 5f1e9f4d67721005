"""The generic write handlers. Each moves the generations of its targets (its caller's
organizations') before answering, by the rule of every write path (proxy/cache/written.py):
not when PostgREST refused the write (a 4xx: the transaction rolled back), always when it
may have committed (a 5xx, a timeout, a lost connection)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from proxy.api import postgrest, tenancy
from proxy.api.inputs import parse_body, parse_query
from proxy.api.postgrest import OBJECT, Reply
from proxy.api.problems import ApiError, validation
from proxy.api.reads import key_of, scoped, visible
from proxy.api.respond import envelope, written_for
from proxy.api.route import Route
from proxy.cache.dependencies import (
    Place,
    function_users,
    stock_scope,
)
from proxy.cache.tenants import user_of
from proxy.gate.gate import identity_of
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError

RETURN_ONE = {"Prefer": "return=representation", "Accept": OBJECT}


async def write(
    request: web.Request,
    identity: Identity,
    route: Route,
    method: str,
    *,
    named: str | None = None,
    products: tuple[str, ...] | None = None,
    places: tuple[Place, ...] | None = None,
    users: tuple[str, ...] | None = None,
    **kw: Any,
) -> Reply:
    """One write upstream, then the invalidation of its targets unless it was refused (named:
    the one organization it certainly acts on; products: the only products it changes, and
    places: the only (product, location) pairs; users: the only users whose memberships it
    changes)."""
    written = await written_for(
        request,
        identity,
        route.targets(),
        named=named,
        products=products,
        places=places,
        users=users,
        target=route.target,
    )
    try:
        kw["headers"] = {**(kw.get("headers") or {}), **written.headers()}
        reply = await postgrest.call(request, identity, method, route.target, **kw)
        await written.answered(reply.status)
        if 400 <= reply.status < 500:
            written.rolled_back()  # a status the caller accepts (ok=...), read whole
        else:
            await written.answer(reply.body)
        return reply
    except ProxyError as exc:
        if 400 <= exc.status < 500:
            written.rolled_back()  # read whole (a lost connection is a 503)
        raise
    finally:
        await written.unsure()  # never answered (a 5xx, a timeout): it may have committed


def row_json(route: Route, body: BaseModel, *, partial: bool) -> dict[str, Any]:
    """The row JSON of a validated body (all fields for PUT, the sent ones for PATCH)."""
    if route.payload is not None:
        return route.payload(body)
    data = body.model_dump(mode="json", exclude_unset=partial)
    if partial and not data:
        raise validation([{"field": "body", "message": "send at least one field"}])
    return data


async def create(request: web.Request, route: Route) -> web.StreamResponse:
    """POST a row into the caller's organization (organization_id is never the client's)."""
    identity = identity_of(request)
    parse_query(route, request.query)
    body = await parse_body(request, route.body)
    org = await tenancy.resolve(request, identity)
    data = row_json(route, body, partial=False) | {"organization_id": org}
    reply = await write(
        request,
        identity,
        route,
        "POST",
        params=[("select", route.select)],
        json=data,
        headers=RETURN_ONE,
        named=org,
    )
    return envelope(reply.json(), status=201)


async def change(request: web.Request, route: Route) -> web.StreamResponse:
    """PUT/PATCH/DELETE(archive)/DELETE one row; 404 when invisible, 403 when not allowed."""
    identity = identity_of(request)
    parse_query(route, request.query)
    key = await key_of(request, route, identity)
    method, data = "PATCH", None
    if route.action in ("replace", "update"):
        body = await parse_body(request, route.body)
        data = row_json(route, body, partial=route.action == "update")
    elif route.action == "archive":
        data = {"active": False, "archived_at": datetime.now(UTC).isoformat()}
    else:
        method = "DELETE"
    org = tenancy.chosen(request, identity) if route.org == "filter" else None
    params = [(route.key, f"eq.{key}"), ("select", route.select), *scoped(route, org)]
    # Filtered to the chosen organization and not moving rows out of it: that one alone.
    named = org if data is None or "organization_id" not in data else None
    try:
        reply = await write(
            request,
            identity,
            route,
            method,
            params=params,
            json=data,
            headers=RETURN_ONE,
            named=named,
        )
    except ApiError as exc:
        if exc.status == 404 and await visible(request, route, identity, key):
            raise ApiError(403, "forbidden", "Your role may not change this row") from None
        raise
    return envelope(reply.json())


REPLAYED = "Idempotent-Replayed"


async def call(request: web.Request, route: Route) -> web.StreamResponse:
    """POST an RPC with arguments from the validated body (and the chosen organization)."""
    identity = identity_of(request)
    parse_query(route, request.query)
    body = await parse_body(request, route.body) if route.body is not None else None
    if route.args is not None:
        args = route.args(body, request)
    else:
        args = body.model_dump(mode="json", exclude_none=True) if body is not None else {}
    if route.org == "arg":
        org = tenancy.chosen(request, identity)
        if org is not None:
            args["organization_id"] = org
    products, places = stock_scope(route.target, args)
    users = function_users(route.target.removeprefix("rpc/"), args, user_of(identity))
    reply = await write(
        request,
        identity,
        route,
        "POST",
        json=args,
        products=products,
        places=places,
        users=users,
    )
    response = envelope(reply.json(), status=route.status)
    replayed = reply.headers.get(REPLAYED)
    if replayed:  # create_order answering an Idempotency-Key it has seen says so
        response.headers[REPLAYED] = replayed
    return response
