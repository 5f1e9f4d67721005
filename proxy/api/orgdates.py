"""Today's date in each organization a request reads, for filters that judge lot expiry.

The SQL rules judge a lot by its organization's date (private.organization_today: the setting
`timezone`, else UTC). A list filter must say the same thing in PostgREST's filter language, so
the proxy reads the time zones the caller can see (public.settings under RLS, one request) and
writes the date into the filter. Organizations whose date is UTC's share the plain condition;
one on another date (a zone across midnight from UTC) gets a condition of its own."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from proxy.api import postgrest
from proxy.gate.identity import Identity

# What the filters read: a change of time zone must not leave a cached list on the old date.
DEPENDS_ON = frozenset({"settings"})
MEMO = "orgdates"  # request key: (org, what dates() answered for it)
Dates = tuple[dt.date, dict[dt.date, list[str]]]


def date_in(zone: str | None, now: dt.datetime) -> dt.date:
    """The date at `now` in zone; UTC for none or a name the zone database does not know (the
    rule of private.organization_timezone)."""
    try:
        return now.astimezone(ZoneInfo(zone)).date() if zone else now.date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.date()


async def dates(request: web.Request, identity: Identity, org: str | None) -> Dates:
    """(UTC's date, {another date: the organizations on it}) for the organizations the caller
    reads (org, or every one it can see); asked once per request (two filters may need it)."""
    known: tuple[str | None, Dates] | None = request.get(MEMO)
    if known is not None and known[0] == org:
        return known[1]
    now = dt.datetime.now(dt.UTC)
    params = [("select", "organization_id,timezone:value->>timezone")]
    if org:
        params.append(("organization_id", f"eq.{org}"))
    reply = await postgrest.call(request, identity, "GET", "settings", params=params)
    other: dict[dt.date, list[str]] = defaultdict(list)
    for row in reply.json() or []:
        day = date_in(row.get("timezone"), now)
        if day != now.date():
            other[day].append(str(row["organization_id"]))
    found: Dates = (now.date(), dict(other))
    request[MEMO] = (org, found)
    return found


def by_date(
    condition: Callable[[dt.date], str], utc_day: dt.date, other: dict[dt.date, list[str]]
) -> str:
    """The terms (comma-separated) of a PostgREST `or=(...)`: condition(date) for each
    organization on its date — those listed in other on theirs, every other one on UTC's."""
    if not other:
        return condition(utc_day)
    listed = ",".join(org for orgs in other.values() for org in orgs)
    terms = [f"and(organization_id.not.in.({listed}),{condition(utc_day)})"]
    for day, orgs in sorted(other.items()):
        terms.append(f"and(organization_id.in.({','.join(orgs)}),{condition(day)})")
    return ",".join(terms)
