"""Request ids: a well-formed X-Request-Id from a trusted proxy is kept, else one is generated.
Errors, logs and the upstream request carry it."""

from __future__ import annotations

import ipaddress
import itertools
import re
import uuid

from aiohttp import web

from proxy.ops.keys import TRUSTED, Network

# Generated ids: random per process, then a counter (unique, and cheaper than uuid4 per request).
PROCESS_ID = uuid.uuid4().hex[:12]
COUNTER = itertools.count(1)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _from_trusted(peer: str | None, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in net for net in trusted)


def request_id_for(incoming: str | None, peer: str | None, trusted: tuple[Network, ...]) -> str:
    """A well-formed X-Request-Id from a trusted proxy (NIMBUS_TRUSTED_PROXIES), else a new one."""
    if incoming and REQUEST_ID.match(incoming) and _from_trusted(peer, trusted):
        return incoming
    return f"{PROCESS_ID}-{next(COUNTER):x}"


def assign_request_id(request: web.Request) -> str:
    """The request's id, stored on it (errors, logs and the upstream request carry it)."""
    request_id = request_id_for(
        request.headers.get("X-Request-Id"), request.remote, request.app.get(TRUSTED) or ()
    )
    request["request_id"] = request_id
    return request_id
