"""The hit path: a GET/HEAD on /rest/v1 or a GET on /api/v1 whose answer sits in this process's
L1 is answered by the protocol handler (proxy/edge/protocol.py) as prepared bytes, without an
aiohttp request, task, middleware chain or response object. The entry itself says which tables it
depends on and which route it is counted under (noted when it entered L1), so an identical
request needs no routing, parsing or validation: the full path did all that for this very key.

Everything here is synchronous and can only say yes. It runs the full path's checks in the same
order of authority — token from the verifier's memo, session not revoked, cache coherent, entry
current, one request from a rate-limit lease — and whenever one of them cannot be decided at
once (a token not seen yet, no lease at hand, an L1 miss, anything unusual about the request),
it returns None and the request takes the full path, which decides with all its I/O. The rate
limit is taken last, so a request handed to the full path has spent nothing here. A test
compares the two paths' answers header by header (tests/test_hitpath.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage

from proxy.api import PREFIX as API_PREFIX
from proxy.api.tenancy import cache_scope
from proxy.cache.cached import etag_matches
from proxy.cache.cachekey import Key, cache_key
from proxy.cache.keys import CACHE
from proxy.cache.store import Entry, ResponseCache
from proxy.edge import wire
from proxy.gate.gate import identity_now, limit_now
from proxy.gate.identity import Identity
from proxy.gate.keys import DENYLIST, LIMITER, VERIFIER
from proxy.ops.errors import REST_PREFIX
from proxy.ops.keys import SETTINGS, TRUSTED
from proxy.ops.metrics import CACHE_RESULTS, HIT_PATH, child
from proxy.ops.observe import record
from proxy.ops.requestid import request_id_for
from proxy.upstream.exchange import unreadable_header

READS = frozenset({"GET", "HEAD"})
REST = REST_PREFIX + "/"
API = API_PREFIX + "/"
HIT = ("X-Cache", "HIT")


@dataclass(frozen=True, slots=True)
class Looked:
    """A GET on /rest/v1 the hit path looked up and could not answer: the caller and the key it
    found, for the relay path (proxy/edge/relaypath.py) not to work them out again."""

    identity: Identity
    key: Key


def head_of(entry: Entry) -> bytes:
    """The status line and the fixed headers of a hit on entry (rendered once per entry)."""
    own = entry.wire
    if own is None:
        own = entry.wire = wire.head(entry.status, (*entry.headers, HIT), len(entry.body))
    return own


def not_modified_head(entry: Entry) -> bytes:
    """The status line and fixed headers of a 304 for entry (rendered once per entry)."""
    own = entry.wire304
    if own is None:
        own = entry.wire304 = wire.head(304, (("ETag", entry.etag), HIT), 0)
    return own


class HitPath:
    """answer(message, peer) -> the whole HTTP response as bytes; else what it looked up (a GET
    on /rest/v1 that missed L1: Looked) or None, and another path answers."""

    def __init__(self, app: web.Application) -> None:
        self.cache: ResponseCache = app[CACHE]
        self.verifier = app[VERIFIER]
        self.denylist = app[DENYLIST]
        self.limiter = app.get(LIMITER)
        self.policy = self.limiter.policies["read"] if self.limiter is not None else None
        self.trusted = app[TRUSTED]
        self.clock = wire.Clock()
        self.hits = child(CACHE_RESULTS, "hit", "l1")

    @classmethod
    def for_app(cls, app: web.Application) -> HitPath | None:
        """The app's hit path, or None when it has no cache or the hit path is turned off."""
        if not app[SETTINGS].hit_path or app.get(CACHE) is None:
            return None
        return cls(app)

    def answer(self, message: RawRequestMessage, peer: str | None) -> bytes | Looked | None:
        start = time.perf_counter()
        method = message.method
        if (
            message.version != HttpVersion11
            or message.should_close
            or message.upgrade
            or "Expect" in message.headers  # aiohttp answers 100-continue or 417 first
            or "#" in message.path  # the full path refuses a fragment
            or not (
                (method in READS and message.path.startswith(REST))
                or (method == "GET" and message.path.startswith(API))  # no HEAD routes there
            )
        ):
            return None
        headers = message.headers
        if unreadable_header(headers) is not None:
            return None  # the full path refuses it, cached or not
        identity = identity_now(headers, self.verifier, self.denylist)
        if identity is None:
            return None
        cache = self.cache
        generations = cache.generations
        if not generations.coherent or "no-cache" in headers.get("Cache-Control", ""):
            return None
        url = message.url
        # The scope each surface's full path caches under (proxy/rest/routes.py,
        # proxy/api/respond.py).
        rest = url.raw_path.startswith(REST)
        scope = identity.scope if rest else cache_scope(identity, headers)
        key = cache_key(scope, method, url.raw_path, url.raw_query_string, headers)
        # An entry carries the tables it depends on: an identical request (same key) has the
        # same dependencies, so no route or select needs parsing here.
        entry = cache.get_l1_known(key)
        if entry is None:
            return Looked(identity, key) if rest and method == "GET" else None
        validator = headers.get("If-None-Match")
        if validator is not None and (
            validator == entry.etag or etag_matches(validator, entry.etag)
        ):
            status = 304
            head = not_modified_head(entry)
            body = b""
        else:
            status = entry.status
            head = head_of(entry)
            body = b"" if method == "HEAD" else entry.body
        # The budget last: whatever goes the full way from here on has spent nothing.
        limits = limit_now(self.limiter, self.policy, identity, peer, headers, self.trusted)
        if limits is None:
            return None
        request_id = request_id_for(headers.get("X-Request-Id"), peer, self.trusted)
        answer = wire.finish(head, limits, request_id, self.clock) + body
        self.hits.inc()
        HIT_PATH.inc()
        record(
            request_id,
            method,
            entry.route,
            status,
            time.perf_counter() - start,
            identity,
            "HIT",
        )
        return answer
