"""`GET /docs`: Swagger UI from the swagger-ui-py package's bundled assets (works offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>NIMBUS API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true});
"""


def assets() -> Path | None:
    """The directory of Swagger UI's files (found without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").exists() else None


def setup(app: web.Application) -> None:
    """Mount /docs, its initialiser and the static assets."""
    folder = assets()

    async def page(_request: web.Request) -> web.Response:
        if folder is None:
            return web.Response(status=503, text="Swagger UI assets are not installed")
        return web.Response(text=PAGE, content_type="text/html")

    async def init(_request: web.Request) -> web.Response:
        return web.Response(text=INIT, content_type="application/javascript")

    app.router.add_get("/docs", page)
    app.router.add_get("/docs/init.js", init)
    if folder is not None:
        app.router.add_static("/docs/static", folder)
