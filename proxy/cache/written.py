"""The rule every write follows, whichever path takes it (/rest/v1's full path,
proxy/rest/routes.py; the protocol handler's relay, proxy/edge/relaypath.py; /api/v1's
write(), proxy/api/writes.py): what it may have changed is bumped once
PostgREST has answered and before its client hears of it, unless the answer proves nothing
changed.

- a 4xx means PostgREST rolled the transaction back, once the answer has been read whole and is
  not the 400 of a lost database connection (those callers turn into a 503): nothing moves;
- a PATCH/DELETE that says it matched no row (exact count 0) moved nothing;
- a write that names nothing (a call of a read-only function) moves nothing;
- anything else moved what it names; and an outcome never learnt (PostgREST failed, went
  silent, or the connection was lost) is bumped too: over-invalidating is safe, missing a
  write is not.

A write that may be bumped carries a token upstream (headers()): the notifications of its
statements are then bumped with it, not again (proxy/cache/ownwrites.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from proxy.cache import tenants
from proxy.cache.answers import FromAnswer, from_answer
from proxy.cache.generations import Generations
from proxy.cache.ownwrites import HEADER


class Written:
    """One write's names and what is known of its outcome: "unknown" until PostgREST's answer
    says "changed" (bumped) or "unchanged". later: for a write whose answer says what else it
    changed (proxy/cache/answers.py), those names are bumped once the answer is read
    (answer()), before its client hears it; never read, all it could have changed."""

    __slots__ = (
        "committed",
        "generations",
        "later",
        "names",
        "outcome",
        "stamp",
        "token",
        "watch",
        "wider",
    )

    def __init__(
        self,
        generations: Generations,
        names: Iterable[str],
        *,
        later: FromAnswer | None = None,
        wider: Callable[[], Iterable[str]] | None = None,
        watch: tuple[str, ...] = (),
    ) -> None:
        # wider, watch: how to name what the write would move were its caller's organizations
        # not known (decided only if needed), and the caller's joins (tenants.joins_of): if
        # those move before the answer (the caller joined an organization meanwhile, and the
        # write may have acted on it), the wider names are bumped too. Not the caller's
        # memberships as a whole: a write removing them (deleting the caller's organization)
        # moves those itself, often before its answer arrives.
        self.generations = generations
        self.names = set(names)
        self.wider = wider
        self.watch = watch
        self.stamp = generations.vector(watch) if watch and wider is not None else None
        # Nothing named: unchanged, unless the caller may yet turn out to be in more.
        self.outcome = "unknown" if self.names or wider is not None else "unchanged"
        self.later = later  # until its answer has been read
        own = generations.own_writes
        self.token = own.start() if self.outcome == "unknown" else None
        # PostgREST answered 2xx/3xx: its transaction committed before it answered. A 5xx (or
        # a gateway's) proves nothing of when, or whether, it commits.
        self.committed = False

    def headers(self) -> dict[str, str]:
        """What to send PostgREST beside the write: its token, if it may be bumped."""
        return {HEADER: self.token} if self.token is not None else {}

    @classmethod
    def by_caller(
        cls,
        generations: Generations,
        names: Callable[[tenants.Orgs], Iterable[str]],
        orgs: tenants.Orgs,
        *,
        named: str | None,
        resource: str,
        caller: str | None,
    ) -> Written:
        """A write to /resource by caller (a user id, or None), whose organizations were looked
        up as orgs (None: not known): names(organizations) are what it moves — of the one it
        names (named) only, when the caller is in it (tenants.narrowed); of every organization
        should the caller join one before the answer — and its answer may say more
        (answers.from_answer). Both write paths build theirs here: /rest/v1's
        (proxy/rest/routes.write_of) and /api/v1's (proxy/api/respond.written_for)."""
        return cls(
            generations,
            names(tenants.narrowed(orgs, named)),
            later=from_answer(resource),
            wider=None if orgs is None else lambda: names(None),
            watch=(tenants.joins_of(caller),),
        )

    def _moving(self) -> set[str]:
        """The names to bump: the wider ones too if the caller joined an organization meanwhile."""
        if self.stamp is not None and self.generations.vector(self.watch) != self.stamp:
            assert self.wider is not None
            return self.names | set(self.wider())
        return self.names

    async def answered(self, status: int, *, nothing_changed: bool = False) -> None:
        """PostgREST's status is known (its body not read yet): bump unless it refused (decided
        by rolled_back() once the answer is read whole) or proved it changed nothing."""
        if 400 <= status < 500 or self.outcome != "unknown":
            return
        if nothing_changed:
            self.outcome = "unchanged"
            return
        self.outcome = "changed"
        self.committed = status < 500
        await self._bump(self._moving(), answered=self.committed)

    async def answer(self, body: bytes | None) -> None:
        """The answer has been read whole (body): for a write whose answer says what else it
        changed, that moves now."""
        later = self.later
        if later is None or self.outcome != "changed":
            return
        self.later = None
        try:
            data = orjson.loads(body or b"null")
        except orjson.JSONDecodeError:
            data = None
        await self._bump(set(later.names(data)), answered=self.committed)

    def rolled_back(self) -> None:
        """A 4xx read whole, PostgREST's own (not a lost connection): nothing moved."""
        if self.outcome == "unknown":
            self.outcome = "unchanged"

    async def unsure(self) -> None:
        """Before answering an error, and when the write is over: if the outcome was never
        learnt, bump everything it names (and all its answer could have named; also when it
        changed but its answer was never read)."""
        unread = set(self.later.unread) if self.later is not None else set()
        self.later = None
        try:
            if self.outcome == "unknown":  # it may not have committed yet: not after the commit
                self.outcome = "changed"
                await self._bump(self._moving() | unread, answered=False)
            elif self.outcome == "changed" and unread:
                await self._bump(unread, answered=self.committed)
        finally:
            self.generations.own_writes.finish(self.token)

    async def _bump(self, names: set[str], *, answered: bool) -> None:
        """Bump names and what this write's notifications asked for so far (answered: PostgREST
        has answered, the write is committed: notifications heard from now on are compared with
        this bump, proxy/cache/ownwrites.py)."""
        own = self.generations.own_writes
        held = own.take(self.token, answered=answered)
        moving = names | held
        if answered:
            own.note_bumped(self.token, moving)
        try:
            if moving:
                await self.generations.bump(moving)
        except BaseException:
            # Cancelled (or a bug): what it took or covered may not have moved. Its
            # notifications are bumped as any other's from now on, those held included.
            own.spoil(self.token, held)
            raise
        finally:
            own.settle(held)
