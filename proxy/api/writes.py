"""The generic write handlers. Each bumps the generations of its targets before answering,
also when the write failed (over-invalidating is safe, missing one is not)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from proxy.api import postgrest, tenancy
from proxy.api.inputs import parse_body, parse_query
from proxy.api.postgrest import OBJECT, Reply
from proxy.api.problems import ApiError, validation
from proxy.api.reads import key_of, scoped, visible
from proxy.api.respond import bump, envelope
from proxy.api.route import Route
from proxy.gate import admit, decorate
from proxy.identity import Identity

RETURN_ONE = {"Prefer": "return=representation", "Accept": OBJECT}


async def write(
    request: web.Request, identity: Identity, route: Route, method: str, **kw: Any
) -> Reply:
    """One write upstream, then the invalidation of its targets whatever the outcome."""
    try:
        return await postgrest.call(request, identity, method, route.target, **kw)
    finally:
        await bump(request, route.targets())


def row_json(route: Route, body, *, partial: bool) -> dict[str, Any]:
    """The row JSON of a validated body (all fields for PUT, the sent ones for PATCH)."""
    if route.payload is not None:
        return route.payload(body)
    data = body.model_dump(mode="json", exclude_unset=partial)
    if partial and not data:
        raise validation([{"field": "body", "message": "send at least one field"}])
    return data


async def create(request: web.Request, route: Route) -> web.StreamResponse:
    """POST a row into the caller's organization (organization_id is never the client's)."""
    identity = await admit(request)
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
    )
    return decorate(request, envelope(reply.json(), status=201))


async def change(request: web.Request, route: Route) -> web.StreamResponse:
    """PUT/PATCH/DELETE(archive)/DELETE one row; 404 when invisible, 403 when not allowed."""
    identity = await admit(request)
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
    try:
        reply = await write(
            request, identity, route, method, params=params, json=data, headers=RETURN_ONE
        )
    except ApiError as exc:
        if exc.status == 404 and await visible(request, route, identity, key):
            raise ApiError(403, "forbidden", "Your role may not change this row") from None
        raise
    return decorate(request, envelope(reply.json()))


async def call(request: web.Request, route: Route) -> web.StreamResponse:
    """POST an RPC with arguments from the validated body (and the chosen organization)."""
    identity = await admit(request)
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
    reply = await write(request, identity, route, "POST", json=args)
    return decorate(request, envelope(reply.json(), status=route.status))
