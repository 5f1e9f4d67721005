"""Lock order: an organization-wide write-off never deadlocks with a movement at one location.

Every stock function locks the stock rows it touches first, in (product_id, location_id) order,
and only then (in apply_movement) the product's cost row. A write-off that took a second
location's row after moving stock at the first would hold the cost row while waiting for it,
and a movement at that second location (its row first, then the cost row) would deadlock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg

from tests.support.domain import World, claims, make_product, stock


def _expire(conn: psycopg.Connection, product: str) -> None:
    """Let time pass: every lot of the product expired yesterday."""
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute(
        "update public.lots set expiry_date = current_date - 1 where product_id = %s", (product,)
    )
    conn.commit()


def _waiting_on_a_lock(conn: psycopg.Connection, pid: int, timeout: float = 10) -> None:
    """Return once backend pid waits for a lock (bounded; polls pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "select wait_event_type from pg_stat_activity where pid = %s", (pid,)
        ).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_organization_wide_write_off_and_a_movement_do_not_deadlock(
    conn, world: World, database_url: str
) -> None:
    """While another transaction holds the second location's stock row and then moves stock
    there, write_off_expired() for the whole organization waits and then finishes: no 40P01."""
    a = world.a
    staff, manager = a.users["staff"], a.users["manager"]
    product = make_product(conn, a.id, f"D-{uuid.uuid4().hex[:8]}")
    conn.commit()
    locations = sorted([a.locations["WH1"], a.locations["ST1"]])
    for location in locations:
        stock(conn, staff, product, location, 5, lot_number="OLD", expiry_date="2031-01-01")
    _expire(conn, product)
    second = locations[1]  # locked second by (product_id, location_id) order

    holder = psycopg.connect(database_url)
    writer = psycopg.connect(database_url)
    result: dict[str, object] = {}

    def write_off() -> None:
        try:
            with writer.transaction():
                writer.execute(
                    "select set_config('request.jwt.claims', %s, true)",
                    (json.dumps(claims(manager)),),
                )
                writer.execute("set local role authenticated")
                result["answer"] = writer.execute("select public.write_off_expired()").fetchone()[0]
        except psycopg.Error as exc:
            result["error"] = exc.sqlstate

    try:
        with holder.transaction():
            holder.execute(
                "select from public.stock_levels where product_id = %s and location_id = %s"
                " for update",
                (product, second),
            )
            thread = threading.Thread(target=write_off)
            thread.start()
            _waiting_on_a_lock(conn, writer.info.backend_pid)
            holder.execute(
                "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims(staff)),)
            )
            holder.execute("set local role authenticated")
            holder.execute(
                "select public.adjust_stock(%s, %s, 1, 'found')", (product, second)
            ).fetchone()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        holder.close()
        writer.close()

    assert "error" not in result, result
    written = {
        (row["location_id"], row["lot_number"])
        for row in result["answer"]["written_off"]
        if row["product_id"] == product
    }
    assert written == {(locations[0], "OLD"), (second, "OLD")}
    left = conn.execute(
        "select location_id::text, on_hand from public.stock_levels where product_id = %s",
        (product,),
    ).fetchall()
    assert dict(left) == {locations[0]: 0, second: 1}
