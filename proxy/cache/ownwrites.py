"""A write this process sends and the notification its statements send back: one bump, not two.

Every write through the proxy is bumped twice without this: once by the proxy when PostgREST
has answered (its names, before the client hears), and once by this process's listener when
the database's NOTIFY of the same statements arrives (proxy/cache/listener.py). Each bump is a
Redis round trip and an announcement to every process, and an entry re-read between the two is
invalidated again (docs/PERFORMANCE.md, S6).

So a write that will be bumped carries a token of its own to PostgREST (the `X-Nimbus-Write`
header: 128 random bits, made here, sent only upstream), the notify triggers put it in their
payload with the id of the transaction that ran the statement (they read the token from
PostgREST's `request.headers`), and this process's listener, hearing a token of a write of its
own, does not bump on its own:

- heard before the write's answer: its names wait (distrusted here at once) and go out with
  the write's own bump, in the same round trip;
- heard after a bump the write made from PostgREST's 2xx/3xx answer: that bump happened after
  the commit (PostgREST answers once its transaction has ended), so only the names it did not
  cover are bumped;
- heard for a write answered 5xx or never answered (a timeout, a lost connection, a gateway's
  error: its bump may precede the commit), for a write whose bump failed, for a transaction other
  than the first one heard with the token, or for a token this process does not know (another
  process's write, one forgotten, one made up): bumped as any other.

Other processes hear the same notification and bump it as they always do: they cannot know that
this one is alive to bump it. Only a process that sent a token trusts it, only while it
remembers it (the last 4,096 writes), and only for the transaction it was first heard with: the
token is secret until that transaction's notifications carry it (after its commit), so a token
copied into a later write, or left in a session's `request.headers`, spares nothing."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol

HEADER = "X-Nimbus-Write"
REMEMBERED = 4096  # writes whose bumps a late notification may still be compared with


class Distrust(Protocol):
    """What holding names needs of the generations (proxy/cache/generations.py)."""

    def unsettle(self, names: Iterable[str]) -> None: ...

    def settle(self, names: Iterable[str]) -> None: ...


class _Open:
    """One write in progress: what its notifications asked for until its first bump (held),
    and what its bumps made after PostgREST answered have covered (bumped; None: none yet)."""

    __slots__ = ("bumped", "held", "spoiled", "tx")

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.bumped: set[str] | None = None
        self.tx: str | None = None  # the transaction its notifications came from
        self.spoiled = False  # a bump of it failed: it covers nothing


class OwnWrites:
    """The tokens of this process's writes: open ones, and the recently closed ones' bumps."""

    def __init__(self, generations: Distrust) -> None:
        self.generations = generations
        self.open: dict[str, _Open] = {}
        # A finished write's bumps after its answer, and its transaction.
        self.closed: OrderedDict[str, tuple[frozenset[str], str | None]] = OrderedDict()
        # Where names nobody will bump with a write go: the listener's coalescer (set while
        # it runs; without a listener nothing is ever held).
        self.release: Callable[[set[str]], None] | None = None

    def start(self) -> str:
        """A token for a write about to be sent (its statements' notifications carry it)."""
        token = secrets.token_hex(16)
        self.open[token] = _Open()
        return token

    def heard(self, token: str | None, tx: str | None, names: set[str]) -> set[str]:
        """A notification's names (token and tx: the write's token and the transaction id the
        payload carries): those the listener must still bump itself (the rest are, or will be,
        in a bump of the write that sent token)."""
        if token is None or tx is None:
            return names
        write = self.open.get(token)
        if write is None:
            entry = self.closed.get(token)
            if entry is None:
                return names
            covered, first = entry
            if first is None:  # the first of its notifications heard: its own transaction's
                self.closed[token] = (covered, tx)
                first = tx
            return names - covered if tx == first else names
        if write.spoiled or write.tx not in (None, tx):
            return names
        write.tx = tx
        if write.bumped is not None:
            return names - write.bumped
        fresh = names - write.held
        self.generations.unsettle(fresh)  # nothing depending on them is served or kept here
        write.held |= fresh
        return set()

    def take(self, token: str | None, *, answered: bool) -> set[str]:
        """The held names to add to the write's bump about to be made (settle() them once it is
        done). answered: the bump follows PostgREST's answer, so the commit: notifications
        heard from now on are compared with it (note_bumped)."""
        write = self.open.get(token) if token is not None else None
        if write is None:
            return set()
        held, write.held = write.held, set()
        if answered and write.bumped is None and not write.spoiled:
            write.bumped = set()
        return held

    def note_bumped(self, token: str | None, names: set[str]) -> None:
        """names are in a bump made after PostgREST's answer (recorded before it is sent: a
        notification heard while it is in flight is covered by it)."""
        write = self.open.get(token) if token is not None else None
        if write is not None and write.bumped is not None:
            write.bumped |= names

    def spoil(self, token: str | None, held: set[str]) -> None:
        """A bump of the write failed (cancelled): the names it took go to the listener, and its
        notifications are bumped as any other's from now on."""
        write = self.open.get(token) if token is not None else None
        if write is None:
            return
        write.spoiled = True
        write.bumped = None
        if held and self.release is not None:
            self.release(held)

    def settle(self, held: set[str]) -> None:
        """Held names that have been bumped (or handed on): no longer distrusted for this."""
        self.generations.settle(held)

    def finish(self, token: str | None) -> None:
        """The write is over: names still held go to the listener to bump; its bumps are
        remembered for notifications still on their way."""
        if token is None or (write := self.open.pop(token, None)) is None:
            return
        if write.held:
            if self.release is not None:
                self.release(write.held)
            self.generations.settle(write.held)
        if write.bumped:
            self.closed[token] = (frozenset(write.bumped), write.tx)
            if len(self.closed) > REMEMBERED:
                self.closed.popitem(last=False)
