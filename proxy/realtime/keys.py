"""Typed application key of what the Realtime surface owns: its change feed (with its hub)."""

from __future__ import annotations

from aiohttp import web

from proxy.realtime.source import Feed

FEED = web.AppKey("realtime_feed", Feed)
