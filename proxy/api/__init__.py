"""/api/v1: the product's resource API, a declarative map onto PostgREST (DESIGN §3).

`setup(app)` mounts every Route of the map with the generic handler of its action, plus the
few hand-written ones (auth, bulk, CSV), `/openapi.json`, `/docs` and `/auth/v1/*`."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.api import (
    auth,
    bulk,
    catalog,
    docs,
    importjobs,
    imports,
    notifications,
    openapi,
    operations,
    reads,
    transfer,
    writes,
)
from proxy.api.route import Route

PREFIX = "/api/v1"
UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
HANDLERS = {
    "list": reads.list_rows,
    "get": reads.get_row,
    "read": reads.read_document,
    "create": writes.create,
    "replace": writes.change,
    "update": writes.change,
    "archive": writes.change,
    "delete": writes.change,
    "call": writes.call,
}


def route_map() -> list[Route]:
    """Every /api/v1 route, static paths before parameterised ones."""
    routes = [*auth.ROUTES, *transfer.ROUTES, *catalog.ROUTES, *operations.ROUTES]
    routes += notifications.ROUTES
    routes += bulk.ROUTES + imports.ROUTES
    return sorted(routes, key=lambda r: "{" in r.path)


def aiohttp_path(path: str) -> str:
    """The route's path for aiohttp: `{id}` matches only a UUID, so `/products/low-stock` is
    never taken for an id (a wrong method there is a 405) and `/products/xyz` is a 404."""
    return path.replace("{id}", "{id:" + UUID_PATTERN + "}")


def bound(route: Route) -> Handler:
    """The aiohttp handler of route: its action's generic handler (or its own) bound to it."""
    handler = route.handler or HANDLERS[route.action]

    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request, route)

    handle.__doc__ = route.summary
    handle.public = route.public  # type: ignore[attr-defined]  # read by the gate middleware
    return handle


def setup(app: web.Application) -> None:
    """Mount /api/v1, its contract and docs, and the Supabase Auth forwarding."""
    routes = route_map()
    for route in routes:
        app.router.add_route(route.method, PREFIX + aiohttp_path(route.path), bound(route))
    spec = openapi.document(routes, PREFIX)
    openapi.setup(app, spec)
    docs.setup(app)
    importjobs.setup(app)  # the registry of this process's running CSV import jobs
    auth.setup_forwarding(app)
