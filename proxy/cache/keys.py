"""Typed application keys for the cache's shared resources: the response cache, the bus of
generations, each user's organizations."""

from __future__ import annotations

from aiohttp import web

from proxy.cache.generations import Generations
from proxy.cache.store import ResponseCache
from proxy.cache.tenants import MemberOrgs

CACHE = web.AppKey("cache", ResponseCache)
BUS = web.AppKey("bus", Generations)
MEMBERS = web.AppKey("members", MemberOrgs)  # each user's organizations (proxy/cache/tenants.py)
