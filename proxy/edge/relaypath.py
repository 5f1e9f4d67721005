"""The relay path: a GET on /rest/v1 from a caller whose token the verifier already knows, that
the hit path could not answer, or a POST there (an insert, an RPC) with a sized body (read by the
relay as it arrives, as aiohttp's full path would, without a deadline of its own), is relayed to
PostgREST by the protocol handler
(proxy/edge/protocol.py) — the request's allow-listed headers out through the one upstream
exchange, PostgREST's answer back as one prepared write — without an aiohttp request, task hop,
middleware chain or response object. Those cost more CPU than the relay itself, and on a machine
PostgREST keeps busy every CPU second the proxy spends is one PostgREST does not get
(docs/PERFORMANCE.md).

With a response cache, the relay is the cache's miss path. A key's first request to this process
is relayed as the pass-through relays it, labelled MISS and kept nowhere (proxy/cache/uses.py);
from its second on, the relay takes the key's place in the
in-flight table (identical requests on the full path wait for it, as they wait for one of their
own), looks in Redis, else asks PostgREST, answers, and stores what the full path would have
stored (Redis after the answer has gone out). The read's dependencies are decided by the same
plan the full path uses (proxy/rest/readplan.py). A POST moves the generations the full path
would move (the same names, the same rule: proxy/cache/written.py).

Like the hit path, it only says yes: `accept()` runs the full path's checks synchronously — token
from the verifier's memo, session not revoked, path without dot segments, embeds within limits,
the caller's organizations already known (unless the read is relayed uncached, as a key's first
request is), cache coherent, one request from a rate-limit lease —
and returns None whenever one of them cannot be decided at once; that request (and any other
method, HEAD included, and a write whose body is not whole, sized or plain) takes the full
path. What it sends and answers is what the full path sends
and answers (tests/test_relaypath.py compares them header by header), errors included: PostgREST
down -> 503, too slow -> 504, a lost database connection -> 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader

from proxy.cache.answers import from_answer
from proxy.cache.cached import storable_parts
from proxy.cache.cachekey import Key, cache_key
from proxy.cache.dependencies import write_targets
from proxy.cache.keys import CACHE, MEMBERS
from proxy.cache.miss import Miss
from proxy.cache.store import Entry, ResponseCache
from proxy.cache.tenants import MemberOrgs, user_of
from proxy.cache.written import Written
from proxy.edge import wire
from proxy.edge.hitpath import Looked, head_of
from proxy.gate import embedlimit
from proxy.gate.gate import identity_now, limit_now, tenant_of
from proxy.gate.identity import Identity
from proxy.gate.keys import DENYLIST, LIMITER, VERIFIER
from proxy.ops.errors import (
    REST_PREFIX,
    ProxyError,
    UpstreamError,
    rest_error_body,
    target_fault,
    upstream_failure,
)
from proxy.ops.keys import ROUTE_LABELS, SETTINGS, TRUSTED
from proxy.ops.metrics import CACHE_RESULTS, IN_FLIGHT, RELAY_PATH, UPSTREAM_ERRORS, child
from proxy.ops.observe import record
from proxy.ops.requestid import request_id_for
from proxy.rest import rootdoc
from proxy.rest.readplan import read_plan
from proxy.rest.routes import has_dot_segments, write_of
from proxy.upstream.exchange import (
    STREAM_THRESHOLD,
    collect,
    exchange,
    request_headers,
    response_headers,
    unreadable_header,
)
from proxy.upstream.keys import UPSTREAM
from proxy.upstream.pool import Unavailable

log = logging.getLogger(__name__)
REST = REST_PREFIX + "/"
MISS = ("X-Cache", "MISS")
BYPASS = ("X-Cache", "BYPASS")


class FirstUse:
    """The plan of a read relayed uncached (its key's first request)."""


FIRST_USE = FirstUse()


@dataclass(slots=True)
class Change:
    """A POST on a cached proxy: what decides the generation names it may move (with its body,
    once read)."""

    resource: str
    query: str
    prefer: str
    content_type: str


@dataclass(slots=True)
class Relay:
    """One accepted request: what to send, and what the answer needs."""

    target: str
    headers: list[tuple[str, str]]
    identity: Identity
    limits: bytes
    request_id: str
    route: str
    start: float
    tenant: str
    miss: Miss | None = None
    first_use: bool = False  # a read relayed uncached: its key's first request (MISS)
    method: str = "GET"
    payload: StreamReader = EMPTY_PAYLOAD  # a POST's body, read by run()
    body: bytes | None = None
    change: Change | None = None  # a POST on a cached proxy
    written: Written | None = None  # ... once its body is read: the rule its outcome follows


class Client(Protocol):
    """What a relay writes to: the protocol handler of the client's connection."""

    transport: asyncio.Transport | None

    async def _drain_helper(self) -> None: ...


class RelayPath:
    """accept(message, peer) -> Relay or None; then `await run(relay, protocol)`."""

    def __init__(self, app: web.Application) -> None:
        settings = app[SETTINGS]
        self.pool = app[UPSTREAM]
        self.cache = app.get(CACHE)
        self.members = app.get(MEMBERS)
        self.verifier = app[VERIFIER]
        self.denylist = app[DENYLIST]
        self.limiter = app.get(LIMITER)
        self.policy = self.limiter.policies["read"] if self.limiter is not None else None
        self.write_policy = self.limiter.policies["write"] if self.limiter is not None else None
        self.max_body = settings.max_body_bytes
        self.trusted = app[TRUSTED]
        self.labels = app[ROUTE_LABELS]
        self.apikey = settings.upstream_apikey
        self.retry_after = settings.retry_after_s
        self.max_embed_depth = settings.max_embed_depth
        self.max_embeds = settings.max_embeds
        self.ttl_s = settings.cache_ttl_s
        self.rpc_ttl_s = settings.cache_rpc_ttl_s
        self.clock = wire.Clock()

    @classmethod
    def for_app(cls, app: web.Application) -> RelayPath | None:
        """The app's relay path, or None when the fast paths are turned off."""
        if not app[SETTINGS].hit_path:
            return None
        return cls(app)

    def accept(
        self,
        message: RawRequestMessage,
        peer: str | None,
        payload: StreamReader = EMPTY_PAYLOAD,
        looked: Looked | None = None,
    ) -> Relay | None:
        """A Relay for a GET, or for a POST with a body of a declared size within the limit
        (run() reads it: a request handed to the full path keeps its body unread). looked: the
        caller and key the hit path found for this GET, if it looked."""
        start = time.perf_counter()
        method = message.method
        if (
            message.version != HttpVersion11
            or message.should_close
            or message.upgrade
            or "Expect" in message.headers
            or not message.path.startswith(REST)
        ):
            return None
        if method == "GET":
            if payload is not EMPTY_PAYLOAD:
                return None
        elif method != "POST" or not self._sized(message, payload):
            return None
        target = message.path[len(REST_PREFIX) :]
        if has_dot_segments(target) or target_fault(target) is not None:
            return None  # the full path refuses it
        resource = message.url.path[len(REST_PREFIX) :].strip("/")
        if method == "GET" and rootdoc.is_root(resource):
            return None  # the full path takes PostgREST's address out of it
        if from_answer(resource) is not None:
            return None  # its answer says what it changed: the full path reads it first
        query = message.url.raw_query_string
        try:
            embedlimit.check(query, max_depth=self.max_embed_depth, max_embeds=self.max_embeds)
        except embedlimit.EmbedLimit:
            return None  # the full path refuses it
        headers = message.headers
        if unreadable_header(headers) is not None:
            return None  # the full path refuses it
        identity = (
            identity_now(headers, self.verifier, self.denylist)
            if looked is None
            else looked.identity
        )
        if identity is None:
            return None
        planned: Miss | None = None
        first_use = False
        if self.cache is not None and self.members is not None:
            if method == "GET":
                key = (
                    looked.key
                    if looked is not None
                    else cache_key(identity.scope, "GET", message.url.raw_path, query, headers)
                )
                plan = self._plan(self.cache, self.members, message, identity, resource, key)
                if plan is None:
                    return None
                if isinstance(plan, Miss):
                    planned = plan
                else:
                    first_use = True
            elif not self.members.remembered(identity, write_targets(resource, method))[0]:
                return None  # organizations not looked up yet: the full path does
        # The budget last: whatever goes the full way from here on has spent nothing.
        policy = self.policy if method == "GET" else self.write_policy
        limits = limit_now(self.limiter, policy, identity, peer, headers, self.trusted)
        if limits is None:
            return None
        change = None
        if method != "GET" and self.cache is not None:
            change = Change(
                resource,
                query,
                ",".join(headers.getall("Prefer", ())),
                headers.get("Content-Type", ""),
            )
        request_id = request_id_for(headers.get("X-Request-Id"), peer, self.trusted)
        upstream_headers = request_headers(headers, identity.token, self.apikey, request_id)
        tenant = tenant_of(identity, peer, headers.getall("X-Forwarded-For", ()), self.trusted)
        miss = planned
        if miss is not None:
            miss.register()  # a lead: from here on, identical requests wait for this one
        elif first_use and self.cache is not None:
            self.cache.uses.wanted(key)  # counted once sure to go ahead (not by the full path)
        RELAY_PATH.inc()
        route = self.labels.rest(resource)
        return Relay(
            target=target,
            headers=upstream_headers,
            identity=identity,
            limits=limits,
            request_id=request_id,
            route=route,
            start=start,
            tenant=tenant,
            miss=miss,
            first_use=first_use,
            method=method,
            payload=payload,
            change=change,
        )

    def _sized(self, message: RawRequestMessage, payload: StreamReader) -> bool:
        """A body the full path would read as it stands: its size declared and within the
        limit, neither chunked nor compressed (or none at all)."""
        headers = message.headers
        if "Content-Encoding" in headers or "Transfer-Encoding" in headers:
            return False
        if payload is EMPTY_PAYLOAD:
            return True
        length = headers.get("Content-Length", "")
        return length.isdigit() and int(length) <= self.max_body

    def _plan(
        self,
        cache: ResponseCache,
        members: MemberOrgs,
        message: RawRequestMessage,
        identity: Identity,
        resource: str,
        key: Key,
    ) -> Miss | FirstUse | None:
        """The Miss of a read the cache may answer or keep; FIRST_USE when this is not yet
        the key's NIMBUS_CACHE_MIN_USES-th request to this process (its first, by default:
        relayed uncached, proxy/cache/uses.py); None when only
        the full path can serve it (a conditional or no-cache request, a query this proxy
        cannot read as PostgREST does, organizations not looked up yet, an entry the hit path
        did not serve)."""
        headers = message.headers
        generations = cache.generations
        if (
            not generations.coherent
            or "no-cache" in headers.get("Cache-Control", "")
            or "If-None-Match" in headers
        ):
            return None
        if key in cache.l1.entries:
            return None
        plan = read_plan(resource, message.url.raw_query_string, self.ttl_s, self.rpc_ttl_s)
        if plan is None:
            return None
        if key not in cache.inflight and not cache.uses.wanted(key, count=False):
            return FIRST_USE  # its dependencies are not needed: nothing will be kept
        decided, orgs = members.remembered(identity, plan.deps)
        if not decided:
            return None
        deps = plan.names(orgs, user_of(identity))
        # A follower of an identical request in flight, or a lead (registered by accept()).
        return Miss.plan(cache, key, generations.vector(deps), deps, plan.ttl_s)

    async def run(self, relay: Relay, protocol: Client) -> None:
        """Relay to PostgREST (or answer from Redis) and write the answer to protocol's
        transport."""
        IN_FLIGHT.inc()
        status = 499  # the client went away before an answer
        state = None
        built: Entry | None = None
        miss = relay.miss
        try:
            if relay.method == "POST":
                if relay.payload is not EMPTY_PAYLOAD:
                    relay.body = await relay.payload.read()  # ConnectionError: the client left
                if relay.change is not None:
                    relay.written = self._written(relay, relay.change)
                    relay.headers.extend(relay.written.headers().items())
                status = await self._exchange(relay, protocol, None, None)
            elif relay.first_use:
                state = "MISS"
                child(CACHE_RESULTS, "miss", "first_use").inc()
                status = await self._exchange(relay, protocol, None, MISS)
            elif miss is None:
                status = await self._exchange(relay, protocol, None, None)
            elif not miss.lead:
                shared = await miss.shared()
                if shared is not None:
                    state = "COALESCED"
                    status = self._answer_entry(relay, protocol, shared, state)
                else:
                    state = "BYPASS"
                    child(CACHE_RESULTS, "bypass", "none").inc()
                    status = await self._exchange(relay, protocol, None, BYPASS)
            else:
                built = await miss.cache.get_l2(miss.key, miss.vector)
                if built is not None:
                    state = "HIT"
                    entry = built
                    entry.deps, entry.route = miss.deps, relay.route  # for the hit path
                    status = self._answer_entry(relay, protocol, entry, state)
                else:
                    state = "MISS"
                    status = await self._exchange(relay, protocol, miss, MISS)
                    built = miss.future.result() if miss.future.done() else None
        except ConnectionError:
            status = 499  # the client left before its answer was written
        finally:
            IN_FLIGHT.dec()
            if miss is not None:
                miss.finish(built)
            await self._unsure(relay)
            elapsed = time.perf_counter() - relay.start
            record(
                relay.request_id, relay.method, relay.route, status, elapsed, relay.identity, state
            )

    def _answer_entry(self, relay: Relay, protocol: Client, entry: Entry, state: str) -> int:
        """An entry found in Redis (HIT) or built by an identical request (COALESCED), as the
        full path answers it."""
        if state == "HIT":
            child(CACHE_RESULTS, "hit", "l2").inc()
            own = head_of(entry)
        else:
            child(CACHE_RESULTS, state.lower(), "none").inc()
            own = wire.head(entry.status, (*entry.headers, ("X-Cache", state)), len(entry.body))
        self._write(
            protocol, wire.finish(own, relay.limits, relay.request_id, self.clock) + entry.body
        )
        return entry.status

    async def _exchange(
        self, relay: Relay, protocol: Client, miss: Miss | None, label: tuple[str, str] | None
    ) -> int:
        """Ask PostgREST and write its answer; a complete one is kept when miss is given, and
        labelled (X-Cache) when label is."""
        try:
            async with exchange(
                self.pool,
                relay.method,
                relay.target,
                relay.headers,
                relay.body,
                retry=relay.method == "GET",
                retry_after=self.retry_after,
                tenant=relay.tenant,
            ) as up:
                written = relay.written
                if written is not None:
                    await written.answered(up.status)  # a POST never proves it changed nothing
                headers = response_headers(up)
                if up.status in wire.NO_BODY:
                    self._write(protocol, self._head(relay, up.status, headers, 0))
                    return up.status
                parts, complete = await collect(up, STREAM_THRESHOLD)
                if complete:
                    body = b"".join(parts)
                    failure = upstream_failure(up.status, body)
                    if failure is not None:
                        await self._unsure(relay)
                        return self._error(relay, protocol, failure)
                    if written is not None and 400 <= up.status < 500:
                        written.rolled_back()
                    if miss is not None:
                        child(CACHE_RESULTS, "miss", "none").inc()
                        if storable_parts(up.status, headers, body, miss.cache.max_entry_bytes):
                            entry = miss.keep(up.status, headers, body, relay.route)
                            miss.future.set_result(entry)
                            headers = list(entry.headers)
                    if label is not None:
                        headers.append(label)
                    self._write(protocol, self._head(relay, up.status, headers, len(body)) + body)
                    return up.status
                # Too large to hold: stream it, sized as PostgREST sized it, else chunked.
                length = up.content_length
                self._write(protocol, self._head(relay, up.status, headers, length))
                pending = b"".join(parts)
                try:
                    while pending:
                        framed = pending if length is not None else wire.chunk(pending)
                        self._write(protocol, framed)
                        await protocol._drain_helper()
                        pending = await up.read_chunk()
                except (Unavailable, TimeoutError) as exc:
                    return self._cut(protocol, exc)
                if length is None:
                    self._write(protocol, wire.CHUNK_END)
                if written is not None and 400 <= up.status < 500:
                    written.rolled_back()  # read whole
                return up.status
        except ProxyError as exc:  # unreachable, too slow (the exchange's), the tenant busy
            await self._unsure(relay)
            return self._error(relay, protocol, exc)
        except ConnectionError:
            return 499  # the client left while its answer was written

    def _written(self, relay: Relay, change: Change) -> Written:
        """The names a write may move, as the full path decides them (proxy/rest/routes.py),
        once its body is here: the caller's organizations are looked at now (memberships may
        have changed while the body arrived; undecided: every organization's)."""
        assert self.cache is not None and self.members is not None  # a Change means a cache
        decided, orgs = self.members.remembered(
            relay.identity, write_targets(change.resource, "POST")
        )
        return write_of(
            self.cache.generations,
            "POST",
            change.resource,
            change.query,
            change.prefer,
            relay.body,
            change.content_type,
            orgs if decided else None,
            user_of(relay.identity),
        )

    @staticmethod
    async def _unsure(relay: Relay) -> None:
        """A write whose outcome was never learnt is bumped (one never sent names nothing)."""
        if relay.written is not None:
            await relay.written.unsure()

    def _head(
        self, relay: Relay, status: int, headers: list[tuple[str, str]], length: int | None
    ) -> bytes:
        return wire.finish(
            wire.head(status, headers, length), relay.limits, relay.request_id, self.clock
        )

    def _error(self, relay: Relay, protocol: Client, error: ProxyError) -> int:
        """The full path's JSON error (which carries no RateLimit headers either)."""
        if isinstance(error, UpstreamError):
            error.log(relay.request_id)
        body = rest_error_body(error)
        headers = [*error.headers.items(), ("Content-Type", "application/json")]
        own = wire.head(error.status, headers, len(body))
        self._write(protocol, wire.finish(own, b"", relay.request_id, self.clock) + body)
        return error.status

    @staticmethod
    def _cut(protocol: Client, exc: BaseException) -> int:
        # The status line is gone: end the connection so the client sees the answer is short.
        log.warning("upstream failed mid-stream: %s", type(exc).__name__)
        UPSTREAM_ERRORS.labels("mid_stream").inc()
        if protocol.transport is not None:
            protocol.transport.close()
        return 502

    @staticmethod
    def _write(protocol: Client, data: bytes) -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)
