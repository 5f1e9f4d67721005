"""`/rest/v1/*`: PostgREST semantics byte for byte, behind token verification."""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from proxy.errors import REST_PREFIX, ProxyError
from proxy.identity import bearer_token
from proxy.keys import SESSION, SETTINGS, VERIFIER
from proxy.upstream import forward


def upstream_url(request: web.Request, base: str) -> str:
    """PostgREST's URL for this request: raw path tail and raw query, unchanged."""
    tail = request.raw_path[len(REST_PREFIX) :]
    path = tail.partition("?")[0]
    if any(seg in (".", "..") for seg in unquote(path).split("/")):
        raise ProxyError("Path must not contain dot segments", status=400, code="PGRST000")
    if not tail.startswith("/"):
        tail = "/" + tail
    return base + tail


async def authenticate(request: web.Request):
    """The verified Identity of the request (401 before anything goes upstream)."""
    headers = request.headers
    token = bearer_token(headers.getall("Authorization", []), headers.getall("apikey", []))
    return await request.app[VERIFIER].verify(token)


def is_preflight(request: web.Request) -> bool:
    """A CORS preflight: it carries no credentials by design, and PostgREST answers it."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


async def rest_handler(request: web.Request) -> web.StreamResponse:
    """Verify the caller, then relay the request to PostgREST with its own token."""
    settings = request.app[SETTINGS]
    url = upstream_url(request, settings.postgrest_url)
    token = None if is_preflight(request) else (await authenticate(request)).token
    body = await request.read() if request.body_exists else None
    return await forward(
        request,
        request.app[SESSION],
        url,
        token=token,
        body=body,
        retry_after=settings.retry_after_s,
        apikey=settings.upstream_apikey,
    )


def setup(app: web.Application) -> None:
    """Mount the pass-through."""
    app.router.add_route("*", REST_PREFIX + "{tail:(/.*)?}", rest_handler)
