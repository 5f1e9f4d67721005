"""Typed application keys for what the gate is given at start-up: the verifier, the denylist and
the rate limiter."""

from __future__ import annotations

from aiohttp import web

from proxy.gate.denylist import Denylist
from proxy.gate.identity import Verifier
from proxy.gate.leases import RateLimiter

VERIFIER = web.AppKey("verifier", Verifier)
DENYLIST = web.AppKey("denylist", Denylist)
LIMITER = web.AppKey("limiter", RateLimiter)
