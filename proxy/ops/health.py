"""`/health` (the process answers; no I/O) and `/ready` (PostgREST and its database answer)."""

from __future__ import annotations

import time

import aiohttp
import orjson
from aiohttp import web

from proxy.keys import CACHE, SESSION, SETTINGS
from proxy.tokens import mint

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2)


async def health(_request: web.Request) -> web.Response:
    """Liveness: answers while the event loop runs."""
    return web.json_response({"status": "ok"}, dumps=lambda o: orjson.dumps(o).decode())


async def _probe(session: aiohttp.ClientSession, method: str, url: str, headers: dict) -> dict:
    start = time.perf_counter()
    try:
        async with session.request(method, url, headers=headers, timeout=PROBE_TIMEOUT) as resp:
            await resp.read()
            ok = resp.status == 200
            result = {"ok": ok, "status": resp.status}
    except (aiohttp.ClientError, TimeoutError) as exc:
        result = {"ok": False, "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


async def ready(request: web.Request) -> web.Response:
    """Readiness: PostgREST reachable with its schema cache loaded from the database."""
    settings = request.app[SETTINGS]
    session = request.app[SESSION]
    if settings.postgrest_admin_url:
        check = await _probe(session, "GET", settings.postgrest_admin_url + "/ready", {})
    else:
        anon = mint(settings.secret, role="anon", ttl=60) if settings.jwt_secret else None
        headers = {"Authorization": f"Bearer {anon}"} if anon else {}
        check = await _probe(session, "HEAD", settings.postgrest_url + "/", headers)
    checks = {"postgrest": check}
    cache = request.app.get(CACHE)
    if cache is not None:
        # Informational: without Redis or LISTEN the proxy serves uncached, it is still ready.
        gens = cache.generations
        checks["cache"] = {
            "ok": True,
            "coherent": gens.coherent,
            "pubsub": gens.pubsub_up,
            "listener": gens.listener_up,
            "redis": None if gens.guard is None else gens.guard.available,
        }
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ok else "not_ready", "checks": checks}
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={} if ok else {"Retry-After": str(settings.retry_after_s)},
    )


def setup(app: web.Application) -> None:
    """Mount the probes."""
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
