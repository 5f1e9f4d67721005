"""Settings: every knob of NIMBUS, read from NIMBUS_* environment variables and an optional .env."""

from __future__ import annotations

import functools
import math
import secrets
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypedDict, Unpack

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from proxy.ops.redisurl import parse as parse_redis_url

ALLOWED_ROLES = ("anon", "authenticated")


def local_secret(state_dir: Path) -> str:
    """Return the local JWT secret, generating it once into the state directory."""
    path = state_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


@dataclass(frozen=True, slots=True)
class Policy:
    """`limit` requests per `window_s`, at most `burst` at once (default: the whole limit): a
    NIMBUS_RATE_LIMIT_* setting, parsed here so that settings import nothing above them; the gate
    applies it (proxy/gate/ratelimit.py)."""

    name: str
    limit: int
    window_s: float
    burst: int

    @classmethod
    def parse(cls, name: str, text: str) -> Policy:
        """ "600/60" or "600/60/100" (limit/window seconds[/burst])."""
        parts = text.split("/")
        if len(parts) not in (2, 3):
            raise ValueError(f"rate limit {text!r} is not limit/window[/burst]")
        limit, window = int(parts[0]), float(parts[1])
        burst = int(parts[2]) if len(parts) == 3 else limit
        if limit < 1 or window <= 0 or burst < 1:
            raise ValueError(f"rate limit {text!r} must be positive")
        return cls(name, limit, window, burst)

    @property
    def interval_ms(self) -> float:
        """Time between two requests at the sustained rate."""
        return self.window_s * 1000 / self.limit

    @property
    def header(self) -> str:
        """The RateLimit-Policy header value (the same for every decision)."""
        return policy_header(self)


@functools.lru_cache(maxsize=64)
def policy_header(policy: Policy) -> str:
    """Policy.header, formatted once per policy."""
    return f'"{policy.name}";q={policy.limit};w={math.ceil(policy.window_s)}'


class Settings(BaseSettings):
    """Validated configuration; defaults run the local stack with nothing set."""

    model_config = SettingsConfigDict(
        env_prefix="NIMBUS_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    state_dir: Path = Path(".local")

    postgrest_url: str = "http://127.0.0.1:3000"
    postgrest_admin_url: str = ""
    database_url: str = "postgresql://postgres@127.0.0.1:5432/nimbus"
    redis_url: str = "redis://127.0.0.1:6379/0"
    supabase_url: str = ""
    # Hosted Supabase's gateway wants an `apikey` on every request; sent when the client sent none.
    upstream_apikey: str = ""

    jwt_secret: str = ""
    jwks_url: str = ""
    jwt_audience: str = "authenticated"
    jwt_leeway_s: int = Field(30, ge=0, le=300)
    # The longest an access token of one session lives (Supabase Auth's JWT expiry): a session
    # signed out stays refused that long, whichever of its tokens signed it out.
    access_token_max_ttl_s: int = Field(3600, ge=60)
    jwt_max_bytes: int = Field(4096, ge=256)
    jwks_cooldown_s: float = Field(30.0, ge=0)
    allow_service_role: bool = False
    token_cache_size: int = Field(10_000, ge=0)

    cache_enabled: bool = True
    rate_limit_enabled: bool = True
    cache_redis_url: str = ""  # optional separate Redis for cache entries (evictable)
    redis_prefix: str = "nimbus"
    redis_timeout_ms: int = Field(250, ge=1)
    redis_breaker_failures: int = Field(3, ge=1)
    redis_breaker_cooldown_s: float = Field(1.0, gt=0)
    cache_ttl_s: int = Field(300, ge=1)
    cache_rpc_ttl_s: int = Field(60, ge=1)
    # Under churn a process's RSS grows by up to ~2x this (allocator fragmentation; measured in
    # docs/PERFORMANCE.md): 32 MiB keeps a process under 150 MB.
    cache_l1_bytes: int = Field(32 * 1024 * 1024, ge=0)
    cache_max_bytes: int = Field(1024 * 1024, ge=1)
    # A key's answer is kept (L1 and Redis) from its Nth request to this process on; the ones
    # before are relayed uncached (proxy/cache/uses.py). 1: from the first.
    cache_min_uses: int = Field(2, ge=1, le=100)
    # Serve through the edge's protocol handler (proxy/edge/protocol.py), which answers L1 hits
    # (proxy/edge/hitpath.py) and relays GETs and cache misses (proxy/edge/relaypath.py) itself;
    # false: stock aiohttp serves everything (as when the start-up check of the aiohttp internals
    # the handler uses fails, proxy/edge/capability.py).
    hit_path: bool = True
    coherence_wait_ms: int = Field(250, ge=0)  # how long a write waits for peers' acks
    listen_enabled: bool = True
    workers: int = Field(1, ge=1, le=64)
    trusted_proxies: str = ""  # CIDRs whose X-Forwarded-For is believed
    rate_limit_read: str = "600/60"  # requests/window seconds[/burst] per user or client IP
    rate_limit_write: str = "120/60"
    rate_limit_auth: str = "20/60"  # LISTEN nimbus_changes on NIMBUS_DATABASE_URL

    max_body_bytes: int = Field(1_048_576, ge=1)
    max_header_bytes: int = Field(16_384, ge=1024)
    upstream_connect_timeout_s: float = Field(3.0, gt=0)
    upstream_timeout_s: float = Field(30.0, gt=0)
    upstream_max_connections: int = Field(100, ge=1)
    retry_after_s: int = Field(2, ge=1)
    # No caller can hold the database (docs/SECURITY.md): a select may embed at most this deep
    # and this many resources (400 otherwise); one tenant (organization claim, else user, else
    # anonymous client IP) has at most tenant_max_inflight requests at PostgREST at once per
    # process (0: no limit), the next wait up to tenant_queue_s for a turn, then 429.
    max_embed_depth: int = Field(3, ge=1)
    max_embeds: int = Field(10, ge=1)
    tenant_max_inflight: int = Field(4, ge=0)
    tenant_queue_s: float = Field(2.0, ge=0)
    shutdown_grace_s: float = Field(10.0, ge=0)

    # Live notifications (GET /api/v1/notifications/stream), fed by LISTEN nimbus_events.
    sse_heartbeat_s: float = Field(15.0, gt=0)  # comment line sent after this long without data
    sse_queue_size: int = Field(256, ge=1)  # events queued per stream before it is dropped
    sse_max_subscribers: int = Field(10_000, ge=1)  # open streams per process (then 503)
    # Open streams per user (else per anonymous client address) and per organization, counted
    # across processes in Redis (per process without it); then 429 too_many_streams.
    sse_max_per_user: int = Field(5, ge=1)
    sse_max_per_organization: int = Field(50, ge=1)
    sse_replay_max: int = Field(5_000, ge=1)  # missed events replayed per (re)connect
    sse_retry_ms: int = Field(2_000, ge=0)  # the `retry:` the client waits before reconnecting
    sse_write_timeout_s: float = Field(30.0, gt=0)  # a client that takes no data this long is cut

    # Realtime (GET /realtime/v1/websocket, proxy/realtime/), fed by LISTEN nimbus_realtime.
    realtime_queue_size: int = Field(1_000, ge=1)  # messages queued per socket, then closed (slow)
    realtime_max_sockets: int = Field(10_000, ge=1)  # open sockets per process (then 503)
    realtime_max_channels: int = Field(100, ge=1)  # channels joined per socket
    realtime_spill_keep_s: float = Field(300.0, gt=0)  # oversized changes kept this long

    # Analytics views where pg_cron does not refresh them (proxy/ops/refresher.py): every
    # analytics_refresh_s (0: never, by the proxy), and analytics_debounce_s after the first stock
    # or order change since the last refresh; one process of all at a time (advisory lock).
    analytics_refresh_s: float = Field(300.0, ge=0)
    analytics_debounce_s: float = Field(5.0, ge=0)

    log_level: str = "INFO"
    access_log: bool = True  # one JSON line per request

    @field_validator("postgrest_url", "postgrest_admin_url", "supabase_url", "jwks_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_length(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (PostgREST refuses shorter secrets)")
        return value

    @field_validator("rate_limit_read", "rate_limit_write", "rate_limit_auth")
    @classmethod
    def _rate(cls, value: str) -> str:
        Policy.parse("check", value)
        return value

    @field_validator("redis_url", "cache_redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parse_redis_url(value)  # seed lists and TLS options, checked at start-up
        return value

    @property
    def rate_policies(self) -> dict[str, Policy]:
        """The read, write and auth policies."""
        return {
            "read": Policy.parse("read", self.rate_limit_read),
            "write": Policy.parse("write", self.rate_limit_write),
            "auth": Policy.parse("auth", self.rate_limit_auth),
        }

    @cached_property
    def secret(self) -> str:
        """The HS256 secret: the configured one, else the one generated into state_dir."""
        return self.jwt_secret or local_secret(self.state_dir)

    @property
    def allowed_roles(self) -> tuple[str, ...]:
        """Roles a token may carry to reach PostgREST through the proxy."""
        if self.allow_service_role:
            return (*ALLOWED_ROLES, "service_role")
        return ALLOWED_ROLES


class Overrides(TypedDict, total=False):
    """Settings the command line may set over the environment (`nimbus serve --host/--port`)."""

    host: str
    port: int


def load_settings(**overrides: Unpack[Overrides]) -> Settings:
    """Build Settings or exit with one clear line per invalid variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            name = (
                "NIMBUS_" + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else ""
            )
            where = name or "configuration"
            print(f"nimbus: invalid {where}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
