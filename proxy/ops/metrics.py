"""Prometheus collectors and `/metrics` (multi-process aware when PROMETHEUS_MULTIPROC_DIR is set,
which `nimbus serve --workers N` does). Every gauge takes a `live*` multiprocess mode: the
supervisor marks an exited worker dead (proxy/edge/workers.py) and only live modes drop its
values."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar, cast

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUEST_SECONDS = Histogram(
    "nimbus_http_request_duration_seconds",
    "Time from receiving a request to its response, by route template.",
    ["method", "route", "status"],
    buckets=BUCKETS,
)
IN_FLIGHT = Gauge(
    "nimbus_http_requests_in_flight", "Requests being handled.", multiprocess_mode="livesum"
)
UPSTREAM_SECONDS = Histogram(
    "nimbus_upstream_request_duration_seconds",
    "Time PostgREST took to answer, by status class.",
    ["status"],
    buckets=BUCKETS,
)
UPSTREAM_ERRORS = Counter("nimbus_upstream_errors_total", "Upstream failures, by kind.", ["kind"])
CACHE_RESULTS = Counter(
    "nimbus_cache_requests_total",
    "Cacheable requests by outcome (hit, miss, coalesced, bypass) and level (l1, l2, none;"
    " first_use: a key's first request, relayed and kept nowhere).",
    ["result", "level"],
)
CACHE_STORES_DROPPED = Counter(
    "nimbus_cache_stores_dropped_total",
    "Misses not stored in Redis because the store queue was full (answered all the same).",
)
HIT_PATH = Counter(
    "nimbus_hit_path_responses_total",
    "L1 hits answered by the protocol handler without an aiohttp request (also counted above).",
)
RELAY_PATH = Counter(
    "nimbus_relay_path_responses_total",
    "Requests taken by the protocol handler to relay to PostgREST without an aiohttp request "
    "(a proxy without a response cache; proxy/edge/relaypath.py).",
)
RATE_LIMIT = Counter(
    "nimbus_ratelimit_decisions_total",
    "Rate-limit decisions by policy, outcome and where they were taken (redis, local).",
    ["policy", "decision", "backend"],
)
JWT_REJECTIONS = Counter(
    "nimbus_jwt_rejections_total", "Requests refused with 401, by reason.", ["reason"]
)
FAIR_SHARE = Counter(
    "nimbus_fair_share_total",
    "Requests that found their tenant's share of PostgREST in use: queued, then refused (429) "
    "when none came free in time (proxy/upstream/fairshare.py).",
    ["outcome"],
)
WORKER_RESTARTS = Counter(
    "nimbus_worker_restarts_total",
    "Workers started by `nimbus serve --workers N` in place of one that died (0 at each start).",
)
ANALYTICS_REFRESHES = Counter(
    "nimbus_analytics_refreshes_total",
    "The proxy's own analytics refresh attempts (proxy/ops/refresher.py), by outcome: refreshed, "
    "busy (another process held the advisory lock), failed.",
    ["outcome"],
)
DEPENDENCY_UP = Gauge(
    "nimbus_dependency_up",
    "1 while a dependency is usable: redis, pubsub, listener.",
    ["dependency"],
    multiprocess_mode="livemin",  # over live processes only: a dead worker's value goes
)


M = TypeVar("M", bound=MetricWrapperBase)
_children: dict[tuple[int | str, ...], MetricWrapperBase] = {}


def child(metric: M, *labels: str) -> M:
    """metric.labels(*labels), remembered: label lookup costs more than the increment itself."""
    key: tuple[int | str, ...] = (id(metric), *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return cast(M, found)  # keyed by id(metric): a child of metric, of metric's type


def registry() -> CollectorRegistry:
    """The registry to expose: all worker processes' files, or this process's own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]  # unannotated __init__
        return combined
    return REGISTRY


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    refresh = request.app.get(REFRESH)
    if refresh is not None:
        refresh()
    response = web.Response(body=generate_latest(registry()))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


REFRESH = web.AppKey[Callable[[], None]]("metrics_refresh")


def setup(app: web.Application) -> None:
    """Mount /metrics."""
    app.router.add_get("/metrics", metrics_handler)
