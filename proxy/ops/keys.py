"""Typed keys every layer shares: the settings, the trusted proxies, the route labels, and the
request key of the callables the protocol handler calls when a request's client disconnects."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from proxy.config import Settings
from proxy.ops.errors import REST_PREFIX

# An address range trusted to say who the client is (NIMBUS_TRUSTED_PROXIES).
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTINGS = web.AppKey("settings", Settings)
TRUSTED = web.AppKey[tuple[Network, ...]]("trusted_proxies")
# Request key: callables the protocol handler calls when the request's client disconnects.
ON_DISCONNECT = "on_disconnect"


class RouteLabels:
    """The bounded route labels of /rest/v1 (metrics and access log): the domain's known tables
    and functions by name, anything else as one label. The names are handed down by create_app
    (the domain's table list lives with the cache), so ops imports nothing above it."""

    def __init__(self, tables: Iterable[str], functions: Iterable[str]) -> None:
        self.known = frozenset(tables) | frozenset(f"rpc/{name}" for name in functions)

    def rest(self, resource: str) -> str:
        """The label of a /rest/v1 resource (the path after the prefix, without slashes)."""
        return f"{REST_PREFIX}/{resource if resource in self.known else '{other}'}"


ROUTE_LABELS = web.AppKey("route_labels", RouteLabels)
