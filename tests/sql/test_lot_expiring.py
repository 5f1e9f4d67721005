"""lot_expiring events: lots inside the expiry window are announced once, by trigger or scan."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import psycopg

from tests.support.db import as_role
from tests.support.domain import World, call, make_product, stock

ANNOUNCED = (
    "select count(*) from public.notifications"
    " where kind = 'lot_expiring' and payload ->> 'lot_id' = %s"
)
EXPIRED = (
    "select payload from public.notifications"
    " where kind = 'lot_expired' and payload ->> 'lot_id' = %s"
)


def _lot(conn, product: str, number: str) -> str:
    """The id of a product's lot by number."""
    return str(
        conn.execute(
            "select id from public.lots where product_id = %s and lot_number = %s",
            (product, number),
        ).fetchone()[0]
    )


def _receive(conn, world: World, days: int, qty=5) -> tuple[str, str]:
    """A new product of a with a lot expiring in `days` days received at WH1: (product, lot)."""
    product = make_product(conn, world.a.id, f"EX-{uuid.uuid4().hex[:8]}")
    conn.commit()
    expiry = dt.date.today() + dt.timedelta(days=days)
    stock(
        conn,
        world.a.users["staff"],
        product,
        world.a.locations["WH1"],
        qty,
        lot_number="EXP-1",
        expiry_date=expiry.isoformat(),
    )
    return product, _lot(conn, product, "EXP-1")


def test_lot_received_inside_the_window_is_announced_once(database_url: str, world: World) -> None:
    """Receiving a lot that expires in 3 days notifies (row + NOTIFY) once; more stock and
    later scans do not notify again."""
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url) as conn,
    ):
        listener.execute("listen nimbus_events")
        product, lot = _receive(conn, world, 3)
        events = [json.loads(n.payload) for n in listener.notifies(timeout=1)]
        stock(
            conn,
            world.a.users["staff"],
            product,
            world.a.locations["WH1"],
            5,
            lot_number="EXP-1",
            expiry_date=(dt.date.today() + dt.timedelta(days=3)).isoformat(),
        )
        conn.execute("select private.scan_expiring_lots()")
        conn.commit()
        assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (1,)
        (payload,) = conn.execute(
            "select payload from public.notifications"
            " where kind = 'lot_expiring' and payload ->> 'lot_id' = %s",
            (lot,),
        ).fetchone()
    mine = [e for e in events if e["kind"] == "lot_expiring" and e["payload"]["lot_id"] == lot]
    assert len(mine) == 1
    assert mine[0]["organization_id"] == world.a.id
    assert payload["product_id"] == product and payload["days_left"] == 3
    assert payload["window_days"] == 30 and float(payload["quantity"]) == 5


def test_lot_outside_the_window_waits_for_the_scan(conn, world: World) -> None:
    """A lot expiring in 60 days is silent; once the window covers it (setting 90 days) one scan
    announces it and the next scan does not."""
    _product, lot = _receive(conn, world, 60)
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (0,)
    conn.execute("select private.scan_expiring_lots()")
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (0,)
    conn.execute(
        "update public.settings set value = value || '{\"expiry_warning_days\": 90}'"
        " where organization_id = %s",
        (world.a.id,),
    )
    (first,) = conn.execute("select private.scan_expiring_lots()").fetchone()
    assert first >= 1
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (1,)
    assert conn.execute("select private.scan_expiring_lots()").fetchone() == (0,)
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (1,)
    assert conn.execute(
        "select notification_id is not null from private.lot_expiry_notices where lot_id = %s",
        (lot,),
    ).fetchone() == (True,)


def test_empty_lot_is_not_announced(conn, world: World) -> None:
    """A lot without stock is not announced even when it is due (the expiring_soon rule)."""
    product, lot = _receive(conn, world, 200)
    stock(conn, world.a.users["staff"], product, world.a.locations["WH1"], -5, lot_number="EXP-1")
    conn.execute(
        "update public.settings set value = value || '{\"expiry_warning_days\": 365}'"
        " where organization_id = %s",
        (world.a.id,),
    )
    conn.execute("select private.scan_expiring_lots()")
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (0,)


def test_refresh_runs_the_scan(conn, world: World) -> None:
    """refresh_analytics (service_role) announces due lots and reports how many."""
    _product, lot = _receive(conn, world, 45)
    conn.execute(
        "update public.settings set value = value || '{\"expiry_warning_days\": 50}'"
        " where organization_id = %s",
        (world.a.id,),
    )
    with as_role(conn, "service_role", {"role": "service_role"}):
        (out,) = conn.execute("select public.refresh_analytics()").fetchone()
        assert out["expiring_lots_announced"] >= 1
        conn.execute("reset role")
        assert conn.execute(
            "select count(*) from private.lot_expiry_notices where lot_id = %s", (lot,)
        ).fetchone() == (1,)


def test_clients_cannot_scan_or_read_the_claims(conn) -> None:
    """authenticated may neither run the scan nor read private.lot_expiry_notices."""
    for sql in (
        "select private.scan_expiring_lots()",
        "select * from private.lot_expiry_notices",
    ):
        try:
            with as_role(conn, "authenticated", {"sub": str(uuid.uuid4())}):
                conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            continue
        raise AssertionError(f"{sql} was allowed")


def _age(conn, lot: str, days: int) -> None:
    """Time passes: the lot's expiry date moves to `days` days ago (triggers off, committed)."""
    conn.commit()
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "update public.lots set expiry_date = current_date - %s where id = %s", (days, lot)
        )


def test_scan_expires_a_past_lot_and_notifies_once(database_url: str, world: World) -> None:
    """A lot with stock past its date becomes expired at the next scan: one lot_expired
    notification (row + NOTIFY), none from later scans; expiring_soon no longer lists it."""
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url) as conn,
    ):
        product, lot = _receive(conn, world, 10)
        _age(conn, lot, 2)
        listener.execute("listen nimbus_events")
        (first,) = conn.execute("select private.scan_expiring_lots()").fetchone()
        conn.commit()
        events = [json.loads(n.payload) for n in listener.notifies(timeout=1)]
        assert first >= 1
        assert conn.execute("select private.scan_expiring_lots(%s)", (lot,)).fetchone() == (0,)
        conn.execute("select private.scan_expiring_lots()")
        conn.commit()
        assert conn.execute("select status from public.lots where id = %s", (lot,)).fetchone() == (
            "expired",
        )
        rows = conn.execute(EXPIRED, (lot,)).fetchall()
        soon = call(conn, world.a.users["staff"], "select lot_id from public.expiring_soon(3650)")
    assert len(rows) == 1
    payload = rows[0][0]
    assert payload["product_id"] == product and payload["days_left"] == -2
    assert float(payload["quantity"]) == 5
    mine = [e for e in events if e["kind"] == "lot_expired" and e["payload"]["lot_id"] == lot]
    assert len(mine) == 1 and mine[0]["organization_id"] == world.a.id
    assert uuid.UUID(lot) not in [row[0] for row in soon]


def test_quarantined_lot_past_its_date_is_expired_too(conn, world: World) -> None:
    """A quarantined lot that passes its date is expired by the scan (its status is final)."""
    _product, lot = _receive(conn, world, 100)
    call(
        conn,
        world.a.users["manager"],
        "select public.set_lot_status(%s, 'quarantined')",
        (lot,),
    )
    _age(conn, lot, 1)
    conn.execute("select private.scan_expiring_lots()")
    assert conn.execute("select status from public.lots where id = %s", (lot,)).fetchone() == (
        "expired",
    )
    assert len(conn.execute(EXPIRED, (lot,)).fetchall()) == 1


def test_empty_lot_past_its_date_is_left_alone(conn, world: World) -> None:
    """A lot without stock is not expired nor announced (nothing to sell or write off)."""
    product, lot = _receive(conn, world, 100)
    stock(conn, world.a.users["staff"], product, world.a.locations["WH1"], -5, lot_number="EXP-1")
    _age(conn, lot, 1)
    conn.execute("select private.scan_expiring_lots()")
    assert conn.execute("select status from public.lots where id = %s", (lot,)).fetchone() == (
        "available",
    )
    assert conn.execute(EXPIRED, (lot,)).fetchall() == []


def test_unusable_lots_are_not_expiring_soon(conn, world: World) -> None:
    """expiring_soon lists usable lots only: a quarantined lot (or an expired one) is not
    announced as expiring either."""
    _product, lot = _receive(conn, world, 45)
    call(
        conn,
        world.a.users["manager"],
        "select public.set_lot_status(%s, 'quarantined')",
        (lot,),
    )
    soon = call(conn, world.a.users["staff"], "select lot_id from public.expiring_soon(60)")
    assert uuid.UUID(lot) not in [row[0] for row in soon]
    conn.execute(
        "update public.settings set value = value || '{\"expiry_warning_days\": 60}'"
        " where organization_id = %s",
        (world.a.id,),
    )
    conn.execute("select private.scan_expiring_lots()")
    assert conn.execute(ANNOUNCED, (lot,)).fetchone() == (0,)
