"""One JSON log line and one histogram sample per request, with the route template (never the
raw path, whose values are unbounded) and no token, key or connection string."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy.ops.errors import REST_PREFIX
from proxy.ops.keys import ROUTE_LABELS
from proxy.ops.metrics import IN_FLIGHT, REQUEST_SECONDS, child
from proxy.ops.requestid import assign_request_id

access = logging.getLogger("nimbus.access")


class Subject(Protocol):
    """The part of the gate's Identity the access log uses."""

    @property
    def subject(self) -> str | None: ...


def route_of(request: web.Request) -> str:
    """A bounded label: the matched route, with known /rest/v1 resources named."""
    path = request.path
    if path.startswith(REST_PREFIX):
        return request.app[ROUTE_LABELS].rest(path[len(REST_PREFIX) :].strip("/"))
    info = request.match_info
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def subject_hash(identity: Subject | None) -> str | None:
    """A short digest of the user id, for correlating a user's requests without naming them."""
    sub = identity.subject if identity is not None else None
    return hashlib.blake2b(sub.encode(), digest_size=6).hexdigest() if sub else None


def record(
    request_id: str,
    method: str,
    route: str,
    status: int,
    elapsed: float,
    identity: Subject | None,
    cache: str | None,
) -> None:
    """The request's histogram sample and, when enabled, its access log line."""
    child(REQUEST_SECONDS, method, route, str(status)).observe(elapsed)
    if access.isEnabledFor(logging.INFO):
        entry = {
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "subject": subject_hash(identity),
            "cache": cache,
        }
        access.info(orjson.dumps(entry).decode())


def observe_middleware() -> Middleware:
    """Outermost (before error rendering): names the request (X-Request-Id), sees the final
    status of every request, errors included, and times all of it. One layer for all of this:
    each middleware layer costs every request a coroutine frame."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        request_id = assign_request_id(request)
        IN_FLIGHT.inc()
        status = 499  # the client went away before an answer
        response = None
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers["X-Request-Id"] = request_id
            return response
        except asyncio.CancelledError:
            raise
        finally:
            IN_FLIGHT.dec()
            record(
                request_id,
                request.method,
                route_of(request),
                status,
                time.perf_counter() - start,
                request.get("identity"),
                response.headers.get("X-Cache") if response is not None else None,
            )

    return middleware
