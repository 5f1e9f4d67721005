"""Writes whose answer says what they changed beyond their caller's organizations.

Two functions change rows the proxy cannot name from the request alone:

- `invite_member` names its invitee by e-mail: whose memberships it changed is the answer's
  `user_id`;
- `refresh_analytics` refreshes the analytics views (every organization's) at most once a
  minute across the database; its answer says whether it did (`refreshed`). Called again
  within the minute it did not: moving every organization's analytics each time would let any
  owner (of an organization they just created) keep every tenant's analytics cold. (Its expiry
  scan expires and announces lots of any organization: its caller's organizations' lots,
  notifications and audit log move with the call, as their rows do for any write
  (dependencies.RPC); the other organizations' rows reach their readers through the triggers'
  NOTIFY, as a write of someone else's does — not by the answer, or any admin could move every
  organization's lots whenever one of their own lots became due.)

What such a write moves is decided when its answer has been read whole and before its client
hears of it (proxy/cache/written.py: Written.answer); an answer never read, or one that cannot
be read, moves everything it could have named (`unread`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from proxy.cache.dependencies import VIEWS, joined_name, user_name
from proxy.ops.ids import is_uuid


@dataclass(frozen=True, slots=True)
class FromAnswer:
    """names(answer) -> what the write moved, given its answer as parsed JSON (None when it was
    not JSON); unread: everything it could have moved."""

    names: Callable[[object], Iterable[str]]
    unread: frozenset[str]


def invited(answer: object) -> Iterable[str]:
    """The invitee's memberships; every user's when the answer does not name one."""
    if isinstance(answer, dict) and is_uuid(answer.get("user_id")):
        return {user_name(answer["user_id"]), joined_name(answer["user_id"])}
    return {"memberships"}


def refreshed(answer: object) -> Iterable[str]:
    """Every organization's analytics, when it refreshed them (or the answer does not say it
    did not)."""
    if isinstance(answer, dict) and answer.get("refreshed") is False:
        return set()
    return VIEWS


ANSWERS = {
    "invite_member": FromAnswer(invited, frozenset({"memberships"})),
    "refresh_analytics": FromAnswer(refreshed, VIEWS),
}


def from_answer(resource: str) -> FromAnswer | None:
    """How a write to /resource learns from its answer what else it moved (None: it does not)."""
    return ANSWERS.get(resource[4:]) if resource.startswith("rpc/") else None
