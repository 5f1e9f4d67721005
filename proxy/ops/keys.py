"""Typed keys every layer shares: the settings, the trusted proxies, and the request key of the
callables the protocol handler calls when a request's client disconnects."""

from __future__ import annotations

from aiohttp import web

from proxy.config import Settings

SETTINGS = web.AppKey("settings", Settings)
TRUSTED = web.AppKey("trusted_proxies", tuple)
# Request key: callables the protocol handler calls when the request's client disconnects.
ON_DISCONNECT = "on_disconnect"
