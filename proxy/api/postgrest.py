"""Calling PostgREST for an /api/v1 route: the caller's own token, bounded time, errors mapped."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web
from multidict import CIMultiDict

from proxy.api.problems import from_postgrest
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError, UpstreamError, database_connection_lost
from proxy.ops.keys import SETTINGS
from proxy.upstream.exchange import exchange
from proxy.upstream.keys import UPSTREAM

log = logging.getLogger(__name__)
OBJECT = "application/vnd.pgrst.object+json"
Params = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful PostgREST answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return orjson.loads(self.body) if self.body else None

    def total(self) -> int | None:
        """The count after the slash of Content-Range (`0-9/42`), when PostgREST sent one."""
        tail = self.headers.get("Content-Range", "").rpartition("/")[2]
        return int(tail) if tail.isdigit() else None


async def call(
    request: web.Request,
    identity: Identity,
    method: str,
    path: str,
    *,
    params: Params = (),
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    ok: tuple[int, ...] = (),
) -> Reply:
    """method /path?params with the caller's token; raises ApiError for an error answer
    (except the statuses in ok)."""
    settings = request.app[SETTINGS]
    sent = {"Accept": "application/json", "Authorization": "Bearer " + identity.token}
    if settings.upstream_apikey:
        sent["apikey"] = settings.upstream_apikey
    if request.get("request_id"):
        sent["X-Request-Id"] = request["request_id"]
    sent.update(headers or {})
    data = None
    if json is not None:
        data = orjson.dumps(json)
        sent["Content-Type"] = "application/json"
    target = "/" + path.lstrip("/")
    if params:
        target += "?" + urlencode(list(params), quote_via=quote)
    async with exchange(
        request.app[UPSTREAM],
        method,
        target,
        sent.items(),
        data,
        retry=method == "GET",
        retry_after=settings.retry_after_s,
    ) as upstream:
        body = await upstream.read()
        status, got = upstream.status, CIMultiDict(upstream.headers)
    if status >= 400 and status not in ok:
        if status == 500:
            UpstreamError.of(body).log(request.get("request_id"))
        raise _error(status, body)
    return Reply(status, got, body)


def _error(status: int, body: bytes) -> ProxyError:
    try:
        parsed = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    # A 400 for a lost database connection is not the request's fault, and a write may have
    # committed: a 503 (which also tells the caller's bump that the outcome is unknown).
    return database_connection_lost(status, parsed) or from_postgrest(status, parsed)
