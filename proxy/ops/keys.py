"""Typed keys every layer shares: the settings, the trusted proxies, and the request key of the
callables the protocol handler calls when a request's client disconnects."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from proxy.config import Settings

# An address range trusted to say who the client is (NIMBUS_TRUSTED_PROXIES).
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTINGS = web.AppKey("settings", Settings)
TRUSTED = web.AppKey[tuple[Network, ...]]("trusted_proxies")
# Request key: callables the protocol handler calls when the request's client disconnects.
ON_DISCONNECT = "on_disconnect"
