"""create_app(settings): the middleware chain, the routes, and the shared resources' lifetimes."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

from aiohttp import web

from proxy import api
from proxy.api import postgrest
from proxy.cache.coherence import cache_status, redis_context
from proxy.cache.dependencies import RPC, TABLES
from proxy.config import Settings
from proxy.edge.middlewares import error_middleware
from proxy.gate.gate import gate_middleware, ratelimit_headers
from proxy.gate.identity import Verifier
from proxy.gate.jwks import JWKS
from proxy.gate.keys import VERIFIER
from proxy.gate.tokens import probe_token
from proxy.notifications import listener as events
from proxy.ops import health, index, metrics, pglisten
from proxy.ops.keys import ROUTE_LABELS, SETTINGS, RouteLabels
from proxy.ops.observe import observe_middleware
from proxy.ops.refresher import refresher_context
from proxy.realtime import service as realtime
from proxy.rest import routes as rest
from proxy.upstream.exchange import open_session
from proxy.upstream.fairshare import FairShare
from proxy.upstream.keys import AUTH_UPSTREAM, SESSION, UPSTREAM
from proxy.upstream.pool import UpstreamPool


def create_app(settings: Settings) -> web.Application:
    """The proxy application for these settings; resources open on startup, close on cleanup."""
    app = web.Application(
        middlewares=[observe_middleware(), error_middleware(), gate_middleware()],
        client_max_size=settings.max_body_bytes,
        handler_args={
            "max_field_size": settings.max_header_bytes,
            "max_line_size": settings.max_header_bytes,
        },
    )
    app[SETTINGS] = settings
    # The access log's and metrics' /rest/v1 labels: the domain's tables and functions.
    app[ROUTE_LABELS] = RouteLabels(TABLES, RPC)
    app.on_response_prepare.append(ratelimit_headers)  # the gate's, on every answer it admitted
    app.cleanup_ctx.append(_upstream)
    app.cleanup_ctx.append(functools.partial(redis_context, call=postgrest.call))
    events.setup(app)  # LISTEN nimbus_events -> live notification streams
    realtime.setup(app)  # LISTEN nimbus_realtime -> /realtime/v1/websocket (postgres_changes)
    app.cleanup_ctx.append(refresher_context)  # analytics views, where pg_cron does not
    # The one LISTEN connection the contexts above added their channels to, started after them.
    app.cleanup_ctx.append(pglisten.listening)
    health.setup(
        app,
        session_of=lambda app: app[SESSION],
        anon_token=probe_token,
        cache_check=cache_status,
    )
    index.setup(app)
    metrics.setup(app)
    rest.setup(app)
    api.setup(app)
    return app


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    """The connections upstream — pools for the requests relayed on a caller's behalf (PostgREST,
    and Supabase Auth when configured), the aiohttp session for the proxy's own calls (sign-in,
    JWKS, health, CSV streams) — and the verifier."""
    settings = app[SETTINGS]
    session = open_session(
        connect_timeout=settings.upstream_connect_timeout_s,
        read_timeout=settings.upstream_timeout_s,
        limit=settings.upstream_max_connections,
    )
    jwks = JWKS(settings.jwks_url, session, settings.jwks_cooldown_s) if settings.jwks_url else None
    if jwks is not None:
        await jwks.refresh()
    app[SESSION] = session
    pools = []
    # Each tenant's share of PostgREST (proxy/upstream/fairshare.py); Supabase Auth is not
    # shared out.
    fair = None
    if settings.tenant_max_inflight:
        fair = FairShare(
            limit=settings.tenant_max_inflight,
            queue_s=settings.tenant_queue_s,
            retry_after=settings.retry_after_s,
        )
    for key, url in ((UPSTREAM, settings.postgrest_url), (AUTH_UPSTREAM, settings.supabase_url)):
        if url:
            app[key] = UpstreamPool(
                url,
                limit=settings.upstream_max_connections,
                connect_timeout=settings.upstream_connect_timeout_s,
                read_timeout=settings.upstream_timeout_s,
                fair=fair if key is UPSTREAM else None,
            )
            pools.append(app[key])
    app[VERIFIER] = Verifier(
        secret=settings.secret if (settings.jwt_secret or not settings.jwks_url) else None,
        jwks=jwks,
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        allowed_roles=settings.allowed_roles,
        max_bytes=settings.jwt_max_bytes,
        memo_size=settings.token_cache_size,
    )
    yield
    for pool in pools:
        await pool.close()
    await session.close()
