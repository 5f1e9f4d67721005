"""Per-table generation numbers: the cache's notion of "has anything I read changed?".

Redis holds the authoritative counters in one hash (`<prefix>:gen`). A bump is published on
`<prefix>:events`; every process applies it to its local copy and acknowledges it on the
bumper's own `<prefix>:ack:<id>` channel, and a write's response waits (bounded by
`ack_timeout_s`) until every subscribed process has acknowledged. So once a client has seen a
write's response, no process serves what the write made stale: read-your-writes holds across
processes, while a cache hit still costs no network round trip.

`EPOCH` is bumped after any gap in listening (pub/sub or database LISTEN), which invalidates
everything: staleness is never silent. Without Redis the counters are local to the process."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson
from redis.exceptions import ResponseError

from proxy.cache.dependencies import (
    ALL,
    ANY,
    EPOCH,
    KNOWN_ORGS,
    NO_ORG,
    NO_PRODUCT,
    ORG,
    ORG_TABLES,
    SCOPED,
    USER,
    USER_TABLES,
)
from proxy.cache.ownwrites import OwnWrites
from proxy.ops.redisconn import Client, Publisher, RedisDown, RedisGuard

log = logging.getLogger(__name__)
# HINCRBY by 1 of each name in the hash KEYS[1], and the bump announced in the same round trip:
# ARGV is the channel ('' on a cluster, where the subscribers' node publishes it), the bump's
# id, who waits for acknowledgements ('' for nobody), the bumper's own acknowledgement channel,
# then the names. Answers the new values, in order, then how many subscribers received the
# announcement (-1: not published here). Values travel as decimal strings (cjson would print a
# large number in exponent form).
#
# Not published when every subscriber of the channel is the bumper itself and the server has no
# replica (whose own subscribers hear what the primary publishes, and NUMSUB does not count):
# the bumper's subscription listens on its acknowledgement channel too, on the same
# connection, so when that channel has a subscriber the bumper is one of the channel's. It
# applies the values this answers; a process subscribing later reads the counters after its
# subscription is confirmed (resync), so it sees this bump either way. A process alone no
# longer reads each of its bumps back.
BUMP_ALL = """
local g, out = {}, {}
for i = 5, #ARGV do
  local value = redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  out[#out + 1] = value
  g[ARGV[i]] = string.format('%d', value)
end
local receivers = -1
if ARGV[1] ~= '' then
  local others = redis.call('PUBSUB', 'NUMSUB', ARGV[1], ARGV[4])
  local info = redis.call('INFO', 'replication')
  local replicas = tonumber(string.match(info, 'connected_slaves:(%d+)')) or 1
  if others[2] > others[4] or replicas > 0 then
    local message = {g = g, id = ARGV[2]}
    if ARGV[3] ~= '' then message['from'] = ARGV[3] end
    receivers = redis.call('PUBLISH', ARGV[1], cjson.encode(message))
  else
    receivers = 0
  end
end
out[#out + 1] = receivers
return out
"""
# A message on the bus other than a bump, decoded from JSON (the denylist's, realtime's).
Announcement: TypeAlias = dict[str, Any]


@dataclass
class _Wait:
    """A bump waiting for acknowledgements."""

    done: asyncio.Future[None]
    expected: int = 0
    armed: bool = False  # announce() has added how many to expect


def _text(value: bytes | str) -> str:
    """A hash field as text (the clients answer bytes: decode_responses is off)."""
    return value.decode() if isinstance(value, bytes) else value


def _parts(name: str) -> tuple[str, str, str]:
    """The counters whose sum is name's generation ("" where there is none: always 0). A
    reader of a whole table T adds T@any (every scoped write); of one product's or one
    organization's rows, T (every unscoped write) and the counter of the writes that do not
    know that dimension (proxy/dependencies.changed_names); of one user's rows (memberships,
    USER_TABLES), those and the table (every write that does not know its users)."""
    table, at, rest = name.partition("@")
    if at and table in SCOPED:
        if rest.endswith(KNOWN_ORGS):  # T#?<org> of the caller's organizations are deps too
            return name[: -len(KNOWN_ORGS)], table, ""
        return name, table, (table + NO_PRODUCT if rest != "any" else "")
    table, mark, rest = name.partition(USER)
    if mark and (table == "memberships" or table in USER_TABLES):
        # One user's rows: their writes and the unscoped ones (TENANCY without a user: all).
        return (name, table, "") if rest else (table, table + ANY, "")
    table, mark, rest = name.partition(ORG)
    if mark and table in ORG_TABLES and not rest.startswith("?"):
        return name, table, (table + NO_ORG if table in SCOPED else "")
    if name in SCOPED or name in ORG_TABLES or name in USER_TABLES:
        return name, name + ANY, ""
    return name, "", ""


class Generations:
    """Local generations, kept coherent through Redis when there is one."""

    def __init__(
        self,
        guard: RedisGuard[Client] | None,
        prefix: str,
        *,
        bus: RedisGuard[Publisher] | None = None,
        ack_timeout_s: float = 0.25,
    ) -> None:
        self.guard = guard
        self.bus: RedisGuard[Publisher] | None = (
            bus or guard
        )  # publishes go where the subscribers are (one node in a cluster)
        self.key = f"{prefix}:gen"
        self.channel = f"{prefix}:events"
        self.me = uuid.uuid4().hex[:12]
        self.ack_channel = f"{prefix}:ack:{self.me}"
        self.ack_timeout_s = ack_timeout_s
        self.gens: dict[str, int] = {}
        self.pubsub_up = guard is None
        self.listener_up = True
        self.on_incoherent: list[Callable[[], None]] = []
        self.on_announcement: list[Callable[[Announcement], None]] = []  # other messages
        self.on_resync: list[Callable[[], Awaitable[None]]] = []
        self.resubscribe: Callable[[], None] | None = None  # set by the subscriber
        self.connected = False  # the subscription's connection is up (maybe not resynced yet)
        self._ids = itertools.count(1)
        self._waiting: dict[str, _Wait] = {}  # bump id -> acknowledgements still expected
        self._parts: dict[tuple[str, ...], tuple[tuple[str, str, str], ...]] = {}  # vector()
        self.scripted = True  # bumps as one EVAL (BUMP_ALL) until the server refuses scripts
        # Counters a bump of this process is moving (name -> bumps in flight): until Redis has
        # answered, nothing depending on them is served or kept (vector() answers UNSETTLED).
        self.unsettled: dict[str, int] = {}
        self._unsettled_vectors = itertools.count(-1, -1)
        # This process's writes in flight, whose notifications go out with their own bumps.
        self.own_writes = OwnWrites(self)

    @property
    def coherent(self) -> bool:
        """True while cached entries can be trusted: subscribed (if Redis) and listening.

        A failing Redis *command* does not end coherence (bumps still arrive over the
        subscription); a lost *subscription* does."""
        return self.pubsub_up and self.listener_up

    def vector(self, deps: tuple[str, ...]) -> tuple[int, ...]:
        """The current generations of deps, epoch first. A scoped table's generation includes
        its scoped writes, a product's or an organization's the table's unscoped ones (_parts):
        sums of counters that only grow, so each moves whenever one of its parts does.

        While a bump of this process is moving one of those counters, a vector of its own that
        equals nothing (a negative number, new each time): no entry is served under it, and no
        answer fetched meanwhile is kept. Counters here only ever take Redis's values, so two
        processes that see the same vector have seen the same writes."""
        gens = self.gens
        parts = self._parts.get(deps)
        if parts is None:
            if len(self._parts) > 65536:  # per-organization names: keep the memo bounded
                self._parts.clear()
            parts = self._parts[deps] = tuple(_parts(name) for name in deps)
        unsettled = self.unsettled
        if unsettled and (
            EPOCH in unsettled
            or any(a in unsettled or b in unsettled or c in unsettled for a, b, c in parts)
        ):
            return (next(self._unsettled_vectors),)
        get = gens.get
        return (get(EPOCH, 0), *[get(a, 0) + get(b, 0) + get(c, 0) for a, b, c in parts])

    def unsettle(self, names: Iterable[str]) -> None:
        """Distrust names here from now until a matching settle() (a bump in flight)."""
        unsettled = self.unsettled
        for name in names:
            unsettled[name] = unsettled.get(name, 0) + 1

    def settle(self, names: Iterable[str]) -> None:
        """One bump of names has been recorded (or has failed, and coherence with it)."""
        unsettled = self.unsettled
        for name in names:
            left = unsettled.get(name, 0) - 1
            if left > 0:
                unsettled[name] = left
            else:
                unsettled.pop(name, None)

    def apply(self, updates: dict[str, int]) -> None:
        """Take newer counters (messages may arrive out of order; counters only grow)."""
        gens = self.gens
        for table, value in updates.items():
            if value > gens.get(table, 0):
                gens[table] = value

    def on_message(self, channel: bytes, payload: bytes) -> None:
        """Called by the subscriber inside the loop turn that read the message."""
        data = orjson.loads(payload)
        if channel == self.ack_channel.encode():
            self._acked(data)
            return
        if "g" in data:
            self.apply({str(k): int(v) for k, v in data["g"].items()})
        else:
            for handler in self.on_announcement:
                handler(data)
        origin = data.get("from")
        if origin and origin != self.me:
            ack = orjson.dumps(data["id"])
            target = f"{self.channel.rsplit(':', 1)[0]}:ack:{origin}"
            asyncio.get_running_loop().create_task(self._send_ack(target, ack))

    async def _send_ack(self, target: str, ack: bytes) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.run(lambda r: r.publish(target, ack))
        except RedisDown:
            pass

    def _acked(self, bump_id: object) -> None:
        waiting = self._waiting.get(str(bump_id))
        if waiting is None:
            return
        waiting.expected -= 1
        # Resolve only once announce() has added how many acknowledgements to expect (an
        # early acknowledgement must not end the wait before the count is known).
        if waiting.armed and waiting.expected <= 0 and not waiting.done.done():
            waiting.done.set_result(None)

    async def bump(self, tables: Iterable[str], *, wait: bool = True) -> None:
        """Advance tables (and ALL) here and, through Redis, everywhere; with wait, returns once
        every subscribed process has applied it (or the ack timeout passed). One round trip
        where the counters and the subscribers share a server (a script records and announces);
        two on a cluster, or where the server refuses scripts."""
        names = sorted({*tables, ALL})
        guard = self.guard
        if guard is None:  # the counters are this process's own
            self.apply({t: self.gens.get(t, 0) + 1 for t in names})
            return
        # Whatever happens next, this process stops trusting what depends on names; it takes
        # Redis's values, never a guess of its own (a guess could equal the value another
        # process's write gets, and hide that write here).
        self.unsettle(names)
        bump_id, waiting = self._expect()
        try:
            try:
                recorded = None
                if self.scripted:
                    channel = self.channel if self.bus is guard else ""
                    sender = self.me if wait else ""
                    recorded = await guard.run(
                        lambda r: self._record(r, names, channel, bump_id, sender)
                    )
                if recorded is None:
                    recorded = [*await guard.run(lambda r: _pipelined(r, self.key, names)), -1]
                *values, receivers = recorded
                updates = dict(zip(names, values, strict=True))
                self.apply(updates)
            finally:
                self.settle(names)
            if receivers < 0:  # not published with the counters
                receivers = await self._publish({"g": updates}, bump_id, wait)
            await self._acknowledged(waiting, receivers, wait)
        except RedisDown:
            self._trouble()
        finally:
            del self._waiting[bump_id]

    async def announce(self, data: Announcement, *, wait: bool = True) -> None:
        """Publish data to every process; with wait, until each has applied it (bounded)."""
        bump_id, waiting = self._expect()
        try:
            receivers = await self._publish(data, bump_id, wait)
            await self._acknowledged(waiting, receivers, wait)
        except RedisDown:
            self._trouble()
        finally:
            del self._waiting[bump_id]

    def _expect(self) -> tuple[str, _Wait]:
        """A new message id and its wait for acknowledgements (registered before it is sent:
        an acknowledgement may come back before the sender hears how many received it)."""
        bump_id = f"{next(self._ids)}"
        waiting = self._waiting[bump_id] = _Wait(asyncio.get_running_loop().create_future())
        return bump_id, waiting

    async def _publish(self, data: Announcement, bump_id: str, wait: bool) -> int:
        """Publish on the bus; how many subscribers received it (0 without a bus)."""
        bus = self.bus
        if bus is None:
            return 0
        # Without "from", receivers do not acknowledge (nobody is waiting).
        message = orjson.dumps({**data, "id": bump_id, "from": self.me if wait else None})
        return int(await bus.run(lambda r: r.publish(self.channel, message)))

    async def _acknowledged(self, waiting: _Wait, receivers: int, wait: bool) -> None:
        """With wait, until every receiver but this process has acknowledged (bounded)."""
        waiting.expected += receivers - (1 if self.connected else 0)
        waiting.armed = True
        if not wait or waiting.expected <= 0:
            return
        try:
            await asyncio.wait_for(waiting.done, self.ack_timeout_s)
        except TimeoutError:
            log.warning(
                "pubsub: %d process(es) did not acknowledge a bump in time", waiting.expected
            )

    async def _record(
        self, client: Client, names: list[str], channel: str, bump_id: str, sender: str
    ) -> list[int] | None:
        """BUMP_ALL: the new values of names, then the announcement's receivers (-1 without a
        channel); None where the server refuses scripts (nothing was recorded: the caller
        pipelines instead, from now on). Any other error (out of memory, a script failing
        part-way) is this bump's failure, not a reason to stop using scripts."""
        try:
            values = await client.eval(
                BUMP_ALL, 1, self.key, channel, bump_id, sender, self.ack_channel, *names
            )
        except ResponseError as exc:
            text = str(exc).lower()
            # Scripts refused (EVAL unknown or not permitted), or a command the script needs
            # not permitted (PUBSUB, INFO: an ACL): pipelined from now on, as without scripts.
            refused = ("eval" in text and "unknown command" in text) or "noperm" in text
            if not (
                refused or "can't run this command" in text or "not allowed from script" in text
            ):
                raise  # this bump failed (the guard makes it RedisDown: trouble, resync)
            log.warning("redis: EVAL refused (%s); generations are pipelined instead", exc)
            self.scripted = False
            return None
        return [int(value) for value in values]

    async def resync(self) -> None:
        """After (re)subscribing: load the counters, lift any that fell behind this process
        (a restarted Redis starts from zero; counters must never go back), bump the epoch."""
        guard = self.guard
        if guard is None:
            return
        raw = await guard.run(lambda r: r.hgetall(self.key))
        remote = {_text(k): int(v) for k, v in raw.items()}
        behind = {t: v - remote.get(t, 0) for t, v in self.gens.items() if v > remote.get(t, 0)}
        if behind:
            remote.update(await guard.run(lambda r: self._lift(r, behind)))
        self.apply(remote)
        await self.bump([EPOCH], wait=False)  # nobody waits on it (and this process is not
        # subscribed yet, so it would wait for an acknowledgement of its own)

    async def _lift(self, client: Client, behind: dict[str, int]) -> dict[str, int]:
        pipe = client.pipeline(transaction=False)
        for name, gap in behind.items():
            pipe.hincrby(self.key, name, gap)
        return dict(zip(behind, [int(v) for v in await pipe.execute()], strict=True))

    async def set_pubsub(self, up: bool) -> None:
        """Subscriber state: down drops trust at once; up resyncs before trusting again."""
        self.connected = up
        if not up:
            self.pubsub_up = False
            self._lost()
            return
        delay = 0.05
        while True:
            try:
                await self.resync()
                for callback in self.on_resync:
                    await callback()
                break
            except (RedisDown, ValueError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        self.pubsub_up = True
        log.info("pubsub: subscribed; cache coherent")

    async def set_listener(self, up: bool) -> None:
        """Database LISTEN state: any gap means unseen external writes, so bump the epoch."""
        if not up:
            self.listener_up = False
            self._lost()
            return
        await self.bump([EPOCH], wait=False)
        self.listener_up = True

    def _trouble(self) -> None:
        """A bump that could not be recorded or announced: the other processes cannot know, so
        nobody may trust the cache until a fresh subscription has resynced (which lifts the
        counters to this process's and bumps the epoch)."""
        self.pubsub_up = False
        self._lost()
        if self.resubscribe is not None:
            self.resubscribe()

    def _lost(self) -> None:
        for callback in self.on_incoherent:
            callback()


async def _pipelined(client: Client, key: str, names: list[str]) -> list[int]:
    """HINCRBY each name, pipelined (where scripts are refused)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hincrby(key, name, 1)
    return [int(value) for value in await pipe.execute()]
