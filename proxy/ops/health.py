"""`/health` (the process answers; no I/O) and `/ready` (PostgREST and its database answer).

What /ready asks of the layers above (the aiohttp session, an anon token for PostgREST, the
cache's state) is handed to `setup` by create_app, so this module imports nothing above ops."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import orjson
from aiohttp import web

from proxy.config import Settings
from proxy.ops.keys import SETTINGS

# What create_app hands to setup (see the module docstring).
Session = Callable[[web.Application], aiohttp.ClientSession]
AnonToken = Callable[[Settings], str | None]
CacheCheck = Callable[[web.Application], dict[str, object] | None]

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)


async def health(_request: web.Request) -> web.Response:
    """Liveness: answers while the event loop runs."""
    return web.json_response({"status": "ok"}, dumps=lambda o: orjson.dumps(o).decode())


async def _probe(
    session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]
) -> dict[str, object]:
    start = time.perf_counter()
    result: dict[str, object]
    try:
        async with session.request(method, url, headers=headers, timeout=PROBE_TIMEOUT) as resp:
            await resp.read()
            ok = resp.status == 200
            result = {"ok": ok, "status": resp.status}
    except (aiohttp.ClientError, TimeoutError) as exc:
        result = {"ok": False, "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


async def ready(
    request: web.Request, session_of: Session, anon_token: AnonToken, cache_check: CacheCheck
) -> web.Response:
    """Readiness: PostgREST reachable with its schema cache loaded from the database."""
    settings = request.app[SETTINGS]
    session = session_of(request.app)
    if settings.postgrest_admin_url:
        check = await _probe(session, "GET", settings.postgrest_admin_url + "/ready", {})
    else:
        anon = anon_token(settings)
        headers = {"Authorization": f"Bearer {anon}"} if anon else {}
        check = await _probe(session, "HEAD", settings.postgrest_url + "/", headers)
    checks = {"postgrest": check}
    cache = cache_check(request.app)
    if cache is not None:
        # Informational: without Redis or LISTEN the proxy serves uncached, it is still ready.
        checks["cache"] = cache
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={} if ok else {"Retry-After": str(settings.retry_after_s)},
    )


def setup(
    app: web.Application, *, session_of: Session, anon_token: AnonToken, cache_check: CacheCheck
) -> None:
    """Mount the probes; /ready gets the session, anon token and cache state it reports on."""

    async def ready_probe(request: web.Request) -> web.Response:
        return await ready(request, session_of, anon_token, cache_check)

    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready_probe)
