"""Issue 16 point 3: analytics count days in the organization's time zone, and every answer says
per section whether it is live or as of a refresh.

A sale at 00:30 in Auckland is on the previous UTC day; one at 23:30 in Los Angeles on the next:
both must land on their local day (and in their local week). Each test uses an organization of
its own (tests.sql.test_analytics_costing's shop) and moves its sales in time as the superuser.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.sql.test_analytics_costing import (  # noqa: F401  (shop is a fixture)
    Shop,
    _product,
    _receive,
    _refresh,
    _report,
    _sell,
    shop,
)
from tests.support.domain import error_of

ZONES = ("Pacific/Auckland", "America/Los_Angeles")


def _set_zone(conn, shop: Shop, zone: str) -> None:  # noqa: F811
    """Set the organization's timezone setting (as the superuser, like a settings PUT)."""
    conn.execute(
        "insert into public.settings as s (organization_id, value)"
        " values (%(o)s, jsonb_build_object('timezone', %(z)s::text))"
        " on conflict (organization_id) do update"
        " set value = s.value || jsonb_build_object('timezone', %(z)s::text)",
        {"o": shop.id, "z": zone},
    )
    conn.commit()


def _at(conn, order: str, when: dt.datetime) -> None:
    """Move a fulfilled order, and the ledger rows it wrote, to `when` (triggers off)."""
    conn.execute("set local session_replication_role = replica")
    conn.execute("update public.orders set completed_at = %s where id = %s", (when, order))
    conn.execute(
        "update public.stock_movements set created_at = %s where order_id = %s", (when, order)
    )
    conn.commit()


def _local_day(zone: str, weekday: int) -> dt.date:
    """The latest local date with this ISO weekday at least two days before today there."""
    day = dt.datetime.now(ZoneInfo(zone)).date() - dt.timedelta(days=2)
    return day - dt.timedelta(days=(day.isoweekday() - weekday) % 7)


@pytest.mark.parametrize("zone", ZONES)
def test_sales_at_both_ends_of_a_local_day_land_on_it(conn, shop: Shop, zone: str) -> None:  # noqa: F811
    """00:30 and 23:30 local on one day: both in that day's and that week's bucket, their cost
    of goods in that day's turnover, though UTC puts one of them on another day (and, on a
    Monday in Auckland or a Sunday in Los Angeles, in another week)."""
    _set_zone(conn, shop, zone)
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    early, late = _sell(conn, shop, product, shop.wh, 2), _sell(conn, shop, product, shop.wh, 3)
    day = _local_day(zone, 1 if zone == "Pacific/Auckland" else 7)
    tz = ZoneInfo(zone)
    times = (
        dt.datetime.combine(day, dt.time(0, 30), tz),
        dt.datetime.combine(day, dt.time(23, 30), tz),
    )
    assert {t.astimezone(dt.UTC).date() for t in times} != {day}  # UTC would split them
    _at(conn, early, times[0])
    _at(conn, late, times[1])
    _refresh(conn)

    sales = _report(
        conn,
        shop,
        "select public.sales_analytics(%s, %s, 'day')",
        (day - dt.timedelta(days=1), day + dt.timedelta(days=1)),
    )
    assert sales["timezone"] == zone
    assert [(s["period"], s["units"]) for s in sales["series"]] == [(day.isoformat(), 5)]
    week = _report(
        conn,
        shop,
        "select public.sales_analytics(%s, %s, 'week')",
        (day - dt.timedelta(days=7), day + dt.timedelta(days=7)),
    )
    monday = day - dt.timedelta(days=day.isoweekday() - 1)
    assert [(s["period"], s["units"]) for s in week["series"]] == [(monday.isoformat(), 5)]
    turnover = _report(conn, shop, "select public.inventory_turnover(%s, %s)", (day, day))
    assert Decimal(str(turnover["cogs"])) == Decimal("25.00")  # 5 units at 5.00
    (units_out,) = conn.execute(
        "select units_out from private.daily_stock_changes where organization_id = %s and day = %s",
        (shop.id, day),
    ).fetchone()
    assert units_out == 5


@pytest.mark.parametrize("zone", ZONES)
def test_today_is_the_organizations(conn, shop: Shop, zone: str) -> None:  # noqa: F811
    """The default period ends today there; a sale at 00:30 today there is today's; the
    forecast's history ends the day before the refresh there."""
    _set_zone(conn, shop, zone)
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    order = _sell(conn, shop, product, shop.wh, 4)
    tz = ZoneInfo(zone)
    today = dt.datetime.now(tz).date()
    _at(conn, order, dt.datetime.combine(today, dt.time(0, 30), tz))
    _refresh(conn)

    sales = _report(conn, shop, "select public.sales_analytics()")
    assert sales["to"] == today.isoformat()
    assert [(s["period"], s["units"]) for s in sales["series"]] == [(today.isoformat(), 4)]
    turnover = _report(conn, shop, "select public.inventory_turnover()")
    assert turnover["to"] == today.isoformat() and turnover["timezone"] == zone
    dashboard = _report(conn, shop, "select public.dashboard()")
    assert dashboard["timezone"] == zone and dashboard["units_30d"] == 4
    forecast = _report(conn, shop, "select public.demand_forecast(%s::uuid, 7)", (product,))
    as_of = dt.datetime.fromisoformat(forecast["as_of"]).astimezone(tz).date()
    assert forecast["history_to"] == (as_of - dt.timedelta(days=1)).isoformat()


def test_unknown_time_zone_is_refused_and_an_old_one_counts_as_utc(conn, shop: Shop) -> None:  # noqa: F811
    """A name PostgreSQL does not know is refused (PT400 validation_failed); one stored before
    the check (triggers off here) counts as UTC instead of breaking the refresh."""
    with pytest.raises(psycopg.Error) as caught:
        _set_zone(conn, shop, "Mars/Olympus")
    assert error_of(caught.value) == ("PT400", "validation_failed")
    conn.rollback()
    conn.execute("set local session_replication_role = replica")
    conn.execute(
        "update public.settings set value = %s where organization_id = %s",
        (Jsonb({"timezone": "Mars/Olympus"}), shop.id),
    )
    conn.commit()
    (zone,) = conn.execute("select private.organization_timezone(%s)", (shop.id,)).fetchone()
    assert zone == "UTC"
    _refresh(conn)
    assert _report(conn, shop, "select public.sales_analytics()")["timezone"] == "UTC"


def test_forecast_alpha_is_no_longer_a_setting(conn, shop: Shop) -> None:  # noqa: F811
    """forecast_alpha was never read since the forecast fits its own parameters: refused now."""
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "update public.settings set value = %s where organization_id = %s",
            (Jsonb({"forecast_alpha": 0.2}), shop.id),
        )


SECTIONED = {
    "dashboard": "select public.dashboard()",
    "sales": "select public.sales_analytics(granularity => 'week', group_by => 'product')",
    "turnover": "select public.inventory_turnover()",
    "forecast": "select public.demand_forecast(null, 7)",
    "reorder": "select public.reorder_suggestions()",
    "valuation": "select public.stock_valuation()",
}


@pytest.mark.parametrize("name", SECTIONED)
def test_every_section_says_live_or_as_of_its_refresh(conn, shop: Shop, name: str) -> None:  # noqa: F811
    """Each section is live (as_of = now, the answer's transaction) or as of the last refresh
    of the views it reads; the answer's as_of is its oldest section's."""
    product = _product(conn, shop)
    _receive(conn, shop, product, shop.wh, 10, "5.00")
    _sell(conn, shop, product, shop.wh, 2)
    _refresh(conn)
    with conn.transaction(force_rollback=True):
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (f'{{"sub": "{shop.owner}", "role": "authenticated"}}',),
        )
        conn.execute("set local role authenticated")
        (answer,) = conn.execute(SECTIONED[name]).fetchone()
        (now,) = conn.execute("select now()").fetchone()
    refreshed = dict(conn.execute("select view, refreshed_at from private.analytics_refreshes"))
    sections = answer["sections"]
    assert sections
    as_ofs = []
    for section in sections.values():
        assert section["keys"]
        stamp = dt.datetime.fromisoformat(section["as_of"])
        if section["freshness"] == "live":
            assert stamp == now
        else:
            assert section["freshness"] == "as_of"
            assert stamp == min(refreshed[v] for v in section["views"])
            as_ofs.append(stamp)
    assert as_ofs, "every analytics answer reads at least one refreshed view"
    assert dt.datetime.fromisoformat(answer["as_of"]) == min(as_ofs)
