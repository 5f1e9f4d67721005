"""GCRA rate limiting: the decision, the Lua script that Redis runs atomically (one key per
subject, Redis's clock), and the same algorithm in-process for when Redis is unavailable. The
policy is a setting (proxy.config.Policy)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from proxy.config import Policy

# KEYS[1] = subject key; ARGV = emission interval (ms), burst, tokens wanted, tokens refunded.
# Grants up to `wanted` requests at once (a lease), after first returning `refunded` unused ones.
# Returns {granted, remaining after the grant, retry_after_ms, reset_ms}.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local refund = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat == nil or tat < now then tat = now end
if refund > 0 then tat = math.max(now, tat - refund * interval) end
local available = math.floor((now + interval * burst - tat) / interval + 1e-9)
local granted = math.min(wanted, math.max(available, 0))
local new_tat = tat + granted * interval
if granted > 0 or refund > 0 then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
end
if granted < 1 and wanted > 0 then
  return {0, 0, math.ceil(tat - interval * (burst - 1) - now), math.ceil(tat - now)}
end
return {granted, available - granted, 0, math.ceil(new_tat - now)}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome and what the RateLimit headers report."""

    allowed: bool
    remaining: int
    retry_after_s: int
    reset_s: int
    policy: Policy
    backend: str = "redis"

    def headers(self) -> dict[str, str]:
        """IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers)."""
        return {"RateLimit-Policy": self.policy.header, "RateLimit": self.state}

    def header_lines(self) -> bytes:
        """The same headers as they are written on the wire (for the hit path)."""
        return f"RateLimit-Policy: {self.policy.header}\r\nRateLimit: {self.state}\r\n".encode()

    @property
    def state(self) -> str:
        """The RateLimit header value: what is left, and when the budget is whole again."""
        return f'"{self.policy.name}";r={self.remaining};t={self.reset_s}'


class LocalGCRA:
    """The same GCRA in process memory (bounded number of subjects)."""

    def __init__(self, max_subjects: int = 100_000) -> None:
        self.tats: dict[str, float] = {}
        self.max_subjects = max_subjects

    def take(self, key: str, interval_ms: float, burst: int) -> tuple[int, int, int, int]:
        """Same contract as the Lua script."""
        now = time.monotonic() * 1000
        tat = max(self.tats.get(key, now), now)
        new_tat = tat + interval_ms
        allow_at = new_tat - interval_ms * burst
        if allow_at > now:
            return 0, 0, math.ceil(allow_at - now), math.ceil(tat - now)
        if key not in self.tats and len(self.tats) >= self.max_subjects:
            self.tats.pop(next(iter(self.tats)))
        self.tats[key] = new_tat
        return 1, math.floor((now - allow_at) / interval_ms), 0, math.ceil(new_tat - now)
