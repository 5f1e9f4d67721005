"""`GET /`: where things are, for a person who opens the base URL."""

from __future__ import annotations

from aiohttp import web

LINKS = {
    "name": "NIMBUS",
    "api": "/api/v1",
    "docs": "/docs",
    "openapi": "/openapi.json",
    "rest": "/rest/v1",
    "health": "/health",
    "ready": "/ready",
    "metrics": "/metrics",
}


async def index(_request: web.Request) -> web.Response:
    """The map of the surfaces."""
    return web.json_response(LINKS)


async def docs_slash(_request: web.Request) -> web.Response:
    """`/docs/` is `/docs`."""
    raise web.HTTPPermanentRedirect("/docs")


def setup(app: web.Application) -> None:
    """Mount `/` and the `/docs/` redirect."""
    app.router.add_get("/", index)
    app.router.add_get("/docs/", docs_slash)
