"""Typed application keys for the shared resources opened at start-up."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from proxy.cache import ResponseCache
from proxy.config import Settings
from proxy.identity import Verifier

SETTINGS = web.AppKey("settings", Settings)
SESSION = web.AppKey("session", aiohttp.ClientSession)
VERIFIER = web.AppKey("verifier", Verifier)
CACHE = web.AppKey("cache", ResponseCache)
