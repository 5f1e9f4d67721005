"""Typed application keys for the shared resources opened at start-up."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.cache import ResponseCache
from proxy.config import Settings
from proxy.denylist import Denylist
from proxy.generations import Generations
from proxy.identity import Verifier
from proxy.leases import RateLimiter
from proxy.tenants import MemberOrgs
from proxy.upstream_pool import UpstreamPool

SETTINGS = web.AppKey("settings", Settings)
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", UpstreamPool)
AUTH_UPSTREAM = web.AppKey("auth_upstream", UpstreamPool)  # when NIMBUS_SUPABASE_URL is set
VERIFIER = web.AppKey("verifier", Verifier)
CACHE = web.AppKey("cache", ResponseCache)
BUS = web.AppKey("bus", Generations)
MEMBERS = web.AppKey("members", MemberOrgs)  # each user's organizations (proxy/tenants.py)
DENYLIST = web.AppKey("denylist", Denylist)
LIMITER = web.AppKey("limiter", RateLimiter)
TRUSTED = web.AppKey("trusted_proxies", tuple)
# Request key: callables the protocol handler calls when the request's client disconnects.
ON_DISCONNECT = "on_disconnect"
