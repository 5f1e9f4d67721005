"""The /api/v1 lot filters write the organization's date into PostgREST filters
(proxy/api/orgdates.py, date_in) where the SQL rules compute it in the database
(private.organization_today: `now() at time zone` the setting). Two clocks may not disagree:
for every zone name PostgreSQL accepts (the settings trigger allows exactly those), at instants
around midnights, month and year ends and daylight-saving changes, both give the same date."""

from __future__ import annotations

import datetime as dt

import psycopg

from proxy.api.orgdates import date_in
from tests.conftest import ADMIN_URL

INSTANTS = [
    "2026-01-01 00:00:00+00",
    "2026-03-08 09:59:59+00",  # US daylight saving starts (10:00Z)
    "2026-03-29 00:30:00+00",  # EU daylight saving starts (01:00Z)
    "2026-04-05 13:30:00+00",  # Auckland leaves daylight saving (14:00Z)
    "2026-06-30 12:00:00+00",
    "2026-09-27 14:15:00+00",  # Auckland enters daylight saving
    "2026-10-25 00:59:59+00",  # EU daylight saving ends
    "2026-11-01 05:59:59+00",  # US daylight saving ends (06:00Z)
    "2026-12-31 10:45:00+00",  # Kiritimati (+14) is in 2027 already
    "2026-12-31 23:59:59+00",
]


def test_every_zone_postgresql_accepts_gives_the_databases_date() -> None:
    query = (
        "select z.name, t, (t at time zone z.name)::date"
        " from pg_catalog.pg_timezone_names as z cross join unnest(%s::timestamptz[]) as t"
    )
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute(query, (INSTANTS,)).fetchall()
    zones = {name for name, _, _ in rows}
    assert len(zones) > 400  # the whole zone database, not a handful
    wrong = [(name, t, day) for name, t, day in rows if date_in(name, t) != day]
    assert wrong == [], f"{len(wrong)} of {len(rows)} (zone, instant) pairs disagree: {wrong[:5]}"


def test_no_zone_and_unknown_names_are_utc_as_in_sql() -> None:
    late = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)
    for zone in (None, "", "Mars/Olympus_Mons", "../etc/passwd", "Europe/Paris\x00"):
        assert date_in(zone, late) == dt.date(2026, 12, 31)
