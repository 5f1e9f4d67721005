"""Generations per organization: which organizations' generations a read depends on and a
write through the proxy moves (the names themselves: proxy/dependencies.changed_names).

RLS lets a caller read and write only the rows of the organizations it belongs to (every
select policy of a table with organization_id says `organization_id = any(member
organizations)`). So a read depends on, and a write may change, only those organizations'
rows: `T#<org>` for each of them stands for `T`. The caller's organizations are looked up
through PostgREST as the caller (`memberships?user_id=eq.<sub>`), memoised per user while the
generation of that user's memberships (`memberships~<sub>`, and the epoch) has not moved: every
read of the user depends on it, so an entry built under one set of organizations is dropped
with it. A lookup that generation moved under is not trusted, and one that failed is not
remembered. A user with no memberships has none (an empty set: its reads depend on no
organization's rows, its writes can change none). Without a user (anon, service_role), with
too many memberships, or when the lookup fails: the whole table, as before.

A read filtered to one organization (`organization_id=eq.X` on /rest/v1, the /api/v1
organization scope) depends on X alone for its own table; its embedded tables, whose rows are
reached through foreign keys, on every organization of the caller. A write that names its
organization with certainty (a PATCH/DELETE filtered on organization_id that does not set it,
a plain insert whose rows all carry it) moves that one, if the caller belongs to it."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

import orjson
from aiohttp import web

from proxy.cache.dependencies import (
    KNOWN_ORGS,
    NO_PRODUCT,
    ORG_TABLES,
    SCOPED,
    TENANCY,
    USER,
    USER_TABLES,
    is_bucket,
    joined_name,
    org_name,
    user_name,
)
from proxy.cache.generations import Generations
from proxy.gate.identity import Identity
from proxy.ops.errors import ProxyError
from proxy.ops.ids import UUID, is_uuid

log = logging.getLogger(__name__)
MAX_ORGS = 16  # more organizations than this: depend on (and move) the whole table
MEMO = 10_000  # users whose organizations are memoised per process
Orgs = frozenset[str] | None


class Failed(enum.Enum):
    """A lookup of a user's organizations that did not answer."""

    FAILED = enum.auto()


FAILED = Failed.FAILED


class Reply(Protocol):
    """What a PostgREST call answers (proxy.api.postgrest.Reply)."""

    def json(self) -> object: ...


class Call(Protocol):
    """How to ask PostgREST as the caller (proxy.api.postgrest.call)."""

    async def __call__(
        self,
        request: web.Request,
        identity: Identity,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = ...,
    ) -> Reply: ...


class MemberOrgs:
    """The organizations of each user, memoised under the generation of their memberships."""

    def __init__(self, generations: Generations, call: Call) -> None:
        # call: how to ask PostgREST as the caller (the /api/v1 client, proxy.api.postgrest.call,
        # given at create_app: one way to call PostgREST, and the cache imports nothing above it).
        self.generations = generations
        self.call = call
        self.memo: dict[str, tuple[tuple[int, ...], Orgs]] = {}
        self.inflight: dict[tuple[str, tuple[int, ...]], asyncio.Future[Orgs | Failed]] = {}

    async def of(
        self, request: web.Request, identity: Identity | None, tables: Iterable[str]
    ) -> Orgs:
        """The caller's organizations, when tables (names a read depends on or a write moves)
        include an organization table; None when not needed or not known (the whole table)."""
        decided, orgs = self.remembered(identity, tables)
        if decided:
            return orgs
        # remembered() decides every request without an authenticated user id.
        assert identity is not None and identity.subject is not None
        subject = identity.subject
        own = (tenancy_of(subject),)
        stamp = self.generations.vector(own)
        # Concurrent first requests of one user share one lookup.
        waiting = self.inflight.get((subject, stamp))
        if waiting is not None:
            found = await asyncio.shield(waiting)
        else:
            future = self.inflight[subject, stamp] = asyncio.get_running_loop().create_future()
            found = FAILED
            try:
                found = await self._lookup(request, identity, subject)
            finally:
                del self.inflight[subject, stamp]
                future.set_result(found)
        if found is FAILED or self.generations.vector(own) != stamp:
            # Not known (the whole table), and not remembered: a lookup that failed is tried
            # again by the next request; one the memberships moved under may predate them.
            return None
        orgs = found
        if len(self.memo) >= MEMO:
            self.memo.clear()
        self.memo[subject] = (stamp, orgs)
        return orgs

    def remembered(self, identity: Identity | None, tables: Iterable[str]) -> tuple[bool, Orgs]:
        """(True, what `of` answers) when that needs no lookup: not needed, or memoised under
        the current generation of the user's memberships; (False, None) when only a lookup can
        tell. For the protocol handler's relay path, which cannot wait."""
        if identity is None or identity.role != "authenticated" or not needs_orgs(tables):
            return True, None
        subject = identity.subject
        if not is_uuid(subject):
            return True, None
        known = self.memo.get(subject)
        if known is not None and known[0] == self.generations.vector((tenancy_of(subject),)):
            return True, known[1]
        return False, None

    async def _lookup(
        self, request: web.Request, identity: Identity, subject: str
    ) -> Orgs | Failed:
        try:
            reply = await self.call(
                request,
                identity,
                "GET",
                "memberships",
                params=[("select", "organization_id"), ("user_id", f"eq.{subject}")],
            )
            rows = reply.json()
        except (ProxyError, orjson.JSONDecodeError) as exc:
            log.info("memberships lookup failed (%s): whole-table generations", type(exc).__name__)
            return FAILED
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return FAILED  # not an answer to trust: an empty set would be the narrowest
        orgs = frozenset(str(r.get("organization_id")) for r in rows if isinstance(r, dict))
        if len(orgs) > MAX_ORGS or not all(UUID.match(o) for o in orgs):
            return None
        return orgs  # none at all is known too: such a caller reads no organization's rows


def read_names(
    deps: tuple[str, ...],
    orgs: Orgs,
    top: tuple[str, str] | None = None,
    user: str | None = None,
) -> tuple[str, ...]:
    """deps with each organization table T replaced by T#o for the caller's organizations o
    (top = (table, org): a read filtered to one organization, for that table), the caller's
    memberships (TENANCY) and each USER_TABLES table by the user's rows (user: an authenticated
    caller's id; the whole table without one); sorted."""
    names: set[str] = set()
    for name in deps:
        if name == TENANCY:
            # The caller's own memberships: every write naming the user moves them, and a
            # write of memberships#o naming no user (a removal, a role change) when the user is
            # in o; organizations not known, every write of memberships (the whole table).
            if orgs is None:
                names.add("memberships")
            else:
                names.add(tenancy_of(user))
                names.update(org_name("memberships", o) for o in orgs)
        elif name in USER_TABLES and user is not None and is_uuid(user):
            names.add(name + USER + user)
        elif top is not None and name == top[0] and name in ORG_TABLES:
            names.add(org_name(name, top[1]))
        elif orgs is not None and name in ORG_TABLES:
            names.update(org_name(name, o) for o in orgs)
        elif orgs is not None and _bucket_of_scoped(name):
            # One product's rows, of one of the caller's organizations: writes that do not
            # know their products move it only through T#?<org> of an organization it is in.
            table = name.partition("@")[0]
            names.add(name + KNOWN_ORGS)
            names.update(table + NO_PRODUCT + o for o in orgs)
        else:
            names.add(name)  # global tables, product buckets, ALL
    return tuple(sorted(names))


def user_of(identity: Identity | None) -> str | None:
    """The user a caller's own memberships are looked up by: an authenticated caller's id."""
    if identity is None or identity.role != "authenticated":
        return None
    return identity.subject


def tenancy_of(user: str | None) -> str:
    """The generation name of a caller's own memberships: the user's, or (anon, service_role, a
    subject that is not a user id) the whole table's."""
    return user_name(user) if is_uuid(user) else "memberships"


def joins_of(user: str | None) -> str:
    """The generation name of a caller's joins (dependencies.joined_name): the user's, or (no
    user id) the whole memberships table's."""
    return joined_name(user) if is_uuid(user) else "memberships"


def needs_orgs(names: Iterable[str]) -> bool:
    """Whether any of these names would be scoped by the caller's organizations (the caller's
    own memberships, TENANCY, are)."""
    return any(name in ORG_TABLES or name == TENANCY or _bucket_of_scoped(name) for name in names)


def _bucket_of_scoped(name: str) -> bool:
    table, at, rest = name.partition("@")
    return bool(at) and table in SCOPED and is_bucket(rest)


def one_org(values: list[str]) -> str | None:
    """The organization an `organization_id` query parameter filters to: exactly one
    `eq.<uuid>` (lower-cased); None otherwise."""
    if len(values) != 1 or not values[0].startswith("eq."):
        return None
    org = values[0][3:].lower()
    return org if UUID.match(org) else None


def named_by_body(body: bytes | None) -> str | None:
    """The one organization every row of an insert's JSON body carries; None when any row
    lacks it or they differ (or the body is not plain JSON rows)."""
    found = carried_by_body(body, "organization_id")
    return found[0] if found is not None and len(found) == 1 else None


def carried_by_body(body: bytes | None, column: str) -> tuple[str, ...] | None:
    """The distinct ids (lower-cased uuids) in column of every row of an insert's JSON body;
    None when any row lacks one (or the body is not plain JSON rows)."""
    if not body or b"\\" in body:  # no escapes: every JSON parser reads the same keys
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    rows = data if isinstance(data, list) else [data]
    found = {r.get(column) if isinstance(r, dict) else None for r in rows}
    if not rows or not all(isinstance(v, str) and UUID.match(v.lower()) for v in found):
        return None
    return tuple(sorted({str(v).lower() for v in found}))


def narrowed(orgs: Orgs, named: str | None) -> Orgs:
    """The organizations whose rows a write naming one (named, None when it names none) may
    change: that one when the caller belongs to it, none when it does not (RLS lets no write
    change another organization's rows), all of the caller's when it names none."""
    if orgs is not None and named is not None:
        return frozenset({named}) if named in orgs else frozenset()
    return orgs
