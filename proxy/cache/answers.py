"""Writes whose answer says what they changed beyond their caller's organizations.

Two functions change rows the proxy cannot name from the request alone:

- `invite_member` names its invitee by e-mail: whose memberships it changed is the answer's
  `user_id`;
- `refresh_analytics` refreshes the analytics views (every organization's) at most once a
  minute across the database, and expires and announces lots of any organization that passed
  their date or entered their expiry window (`lot_expired`, `lot_expiring` notifications); its
  answer says whether it refreshed (`refreshed`) and how many lots it announced
  (`expiring_lots_announced`, both kinds). Called again within
  the minute, it usually did neither: moving every organization's analytics, lots and
  notifications each time would let any owner (of an organization they just created) keep
  every tenant's cache cold.

What such a write moves is decided when its answer has been read whole and before its client
hears of it (proxy/cache/written.py: Written.answer); an answer never read, or one that cannot
be read, moves everything it could have named (`unread`). The rows of other organizations
reach their readers' processes through the triggers' NOTIFY as well."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from proxy.cache.dependencies import SIDE_EFFECTS, VIEWS, target_names, user_name
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
        return {user_name(answer["user_id"])}
    return {"memberships"}


# The scan's writes: lots expired or announced (audited), their notifications.
ANNOUNCED = frozenset(target_names({"lots"} | SIDE_EFFECTS, None, None))


def refreshed(answer: object) -> Iterable[str]:
    """The views when it refreshed them; every organization's lots, notifications and audit log
    when it expired or announced any lot (or the answer does not say it did neither)."""
    if not isinstance(answer, dict):
        return VIEWS | ANNOUNCED
    names: set[str] = set()
    if answer.get("refreshed") is not False:
        names |= VIEWS
    announced = answer.get("expiring_lots_announced")
    if not (type(announced) is int and announced == 0):
        names |= ANNOUNCED
    return names


ANSWERS = {
    "invite_member": FromAnswer(invited, frozenset({"memberships"})),
    "refresh_analytics": FromAnswer(refreshed, VIEWS | ANNOUNCED),
}


def from_answer(resource: str) -> FromAnswer | None:
    """How a write to /resource learns from its answer what else it moved (None: it does not)."""
    return ANSWERS.get(resource[4:]) if resource.startswith("rpc/") else None
