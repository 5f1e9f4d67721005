"""Typed application keys for the connections upstream."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.upstream.pool import UpstreamPool

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", UpstreamPool)
AUTH_UPSTREAM = web.AppKey("auth_upstream", UpstreamPool)  # when NIMBUS_SUPABASE_URL is set
