"""CSV export, streamed from PostgREST (`Accept: text/csv`) with the list routes' filters:
rows go to the client as PostgREST produces them, never buffered whole."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.api import catalog, operations, tenancy
from proxy.api.inputs import parse_query
from proxy.api.problems import ApiError
from proxy.api.reads import scoped
from proxy.api.route import Route
from proxy.errors import UpstreamUnavailable
from proxy.gate import admit, decorate
from proxy.keys import SESSION, SETTINGS

COLUMNS = {
    "products": "id,sku,barcode,name,unit,price,unit_cost,low_stock_threshold,active,category_id,"
    "supplier_id,created_at,updated_at",
    "orders": "id,number,kind,status,location_id,supplier_id,customer_name,currency,created_at",
    "stock_movements": "id,created_at,kind,product_id,location_id,lot_id,quantity,unit_cost,"
    "order_id,reason",
}


def _list_route(path: str) -> Route:
    return next(
        r for r in [*catalog.ROUTES, *operations.ROUTES] if r.path == path and r.method == "GET"
    )


async def export(request: web.Request, route: Route) -> web.StreamResponse:
    """Stream the filtered rows of route.target as CSV."""
    identity = await admit(request)
    listing = parse_query(route, request.query)
    org = tenancy.chosen(request, identity)
    params = [*route.fixed, *listing.params, *scoped(route, org)]
    for spec, value in listing.resolvers:
        params.extend(await spec.resolve(request, identity, value, org))
    select = ",".join([COLUMNS[route.target], *listing.embeds])
    params += [("select", select), ("order", "created_at.asc,id.asc")]
    settings = request.app[SETTINGS]
    headers = {"Authorization": "Bearer " + identity.token, "Accept": "text/csv"}
    try:
        async with request.app[SESSION].get(
            settings.postgrest_url + "/" + route.target, params=params, headers=headers
        ) as upstream:
            if upstream.status >= 400:
                raise ApiError(
                    upstream.status, "bad_request", "Export failed", (await upstream.text())[:500]
                )
            name = request.path.rsplit("/", 1)[1]
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/csv; charset=utf-8",
                    "Content-Disposition": f'attachment; filename="{name}"',
                    "Cache-Control": "no-store",
                }
            )
            decorate(request, response)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientConnectionError:
        raise UpstreamUnavailable("PostgREST is unavailable") from None


def _export(name: str, target: str, list_path: str) -> Route:
    source = _list_route(list_path)
    return Route(
        "GET",
        f"/export/{name}.csv",
        "custom",
        target,
        f"Export {name} as CSV",
        "Export",
        query=source.query,
        handler=export,
        extra={"csv": True},
    )


ROUTES: list[Route] = [
    _export("products", "products", "/products"),
    _export("orders", "orders", "/orders"),
    _export("movements", "stock_movements", "/stock/movements"),
]
