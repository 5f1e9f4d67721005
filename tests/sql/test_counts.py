"""Stock counts: open, record, post as one atomic set of adjustments; stale lines refused."""

from __future__ import annotations

import json
import threading
import uuid

import psycopg
import pytest

from tests.support.domain import (
    World,
    acting,
    call,
    error_of,
    items,
    make_product,
    new_user,
    stock,
)


def open_count(conn, uid: str, location: str, note: str | None = None) -> dict:
    """open_stock_count as uid; the count as JSON."""
    return call(conn, uid, "select public.open_stock_count(%s, %s)", (location, note))[0][0]


def record(conn, uid: str, count: str, product: str, counted, lot: str | None = None) -> dict:
    """record_stock_count as uid; the line as JSON."""
    return call(
        conn,
        uid,
        "select public.record_stock_count(%s, %s, %s, %s)",
        (count, product, counted, lot),
    )[0][0]


def post(conn, uid: str, count: str) -> dict:
    """post_stock_count as uid; the posted count as JSON."""
    return call(conn, uid, "select public.post_stock_count(%s)", (count,))[0][0]


def refused(conn, uid: str, query: str, params=()) -> psycopg.Error:
    """The error a statement run as uid raises (its transaction rolled back)."""
    with pytest.raises(psycopg.Error) as caught, acting(conn, uid, commit=False):
        conn.execute(query, params)
    return caught.value


def on_hand(conn, product: str, location: str):
    """on_hand of a product at a location (0 without a stock row)."""
    row = conn.execute(
        "select on_hand from public.stock_levels where product_id = %s and location_id = %s",
        (product, location),
    ).fetchone()
    conn.commit()
    return row[0] if row else 0


def fresh(conn, world: World, **kw) -> str:
    """A new product of organization a (committed)."""
    product = make_product(conn, world.a.id, f"C-{uuid.uuid4().hex[:8]}", **kw)
    conn.commit()
    return product


def new_location(conn, world: World, *, active: bool = True) -> str:
    """A new location of organization a (committed)."""
    tag = uuid.uuid4().hex[:6]
    location = str(
        conn.execute(
            "insert into public.locations (organization_id, name, code, kind, active)"
            " values (%s, %s, %s, 'store', %s) returning id",
            (world.a.id, f"Count {tag}", f"C{tag}", active),
        ).fetchone()[0]
    )
    conn.commit()
    return location


def test_open_record_post_makes_on_hand_equal_counted(conn, world: World) -> None:
    """Staff count three products (one short, one over, one never stocked); a manager posts:
    each variance is one adjustment and on_hand equals what was counted."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    short, over, unseen = fresh(conn, world), fresh(conn, world), fresh(conn, world)
    stock(conn, staff, short, wh, 10)
    stock(conn, staff, over, wh, 5)
    count = open_count(conn, staff, wh, "aisle 4")
    assert (count["status"], count["location_id"], count["lines"]) == ("open", wh, [])
    assert count["created_by"] == staff
    line = record(conn, staff, count["id"], short, 7)
    assert (line["counted"], line["on_hand_at_count"], line["variance"]) == (7, 10, None)
    record(conn, staff, count["id"], over, 9)
    record(conn, staff, count["id"], unseen, 2)

    err = refused(conn, staff, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(err) == ("PT403", "forbidden")
    done = post(conn, manager, count["id"])
    assert done["status"] == "posted" and done["posted_by"] == manager
    variances = {ln["product_id"]: ln["variance"] for ln in done["lines"]}
    assert variances == {short: -3, over: 4, unseen: 2}
    assert [on_hand(conn, p, wh) for p in (short, over, unseen)] == [7, 9, 2]
    moves = conn.execute(
        "select product_id::text, kind, quantity, reason from public.stock_movements"
        " where reason = %s order by quantity",
        (f"count {count['id']}",),
    ).fetchall()
    reason = f"count {count['id']}"
    assert moves == [
        (short, "adjustment", -3, reason),
        (unseen, "adjustment", 2, reason),
        (over, "adjustment", 4, reason),
    ]
    conn.commit()

    again = refused(conn, manager, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(again) == ("PT409", "count_closed")
    late = refused(conn, staff, "select public.record_stock_count(%s, %s, 1)", (count["id"], short))
    assert error_of(late) == ("PT409", "count_closed")


def test_recording_again_replaces_the_line_and_its_snapshot(conn, world: World) -> None:
    """A recount after stock moved replaces the line (one line, new snapshot): posting works."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world)
    stock(conn, staff, product, wh, 10)
    count = open_count(conn, staff, wh)
    record(conn, staff, count["id"], product, 7)
    stock(conn, staff, product, wh, 1)
    line = record(conn, staff, count["id"], product, 8)
    assert (line["counted"], line["on_hand_at_count"]) == (8, 11)
    done = post(conn, manager, count["id"])
    assert [(ln["counted"], ln["variance"]) for ln in done["lines"]] == [(8, -3)]
    assert on_hand(conn, product, wh) == 8


def test_post_is_refused_when_stock_moved_after_counting(conn, world: World) -> None:
    """Stock of a counted line moves (even back to the same quantity): the whole post is
    refused with count_stale naming that line, and nothing is written; after a recount it
    posts."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    moved, still, netted = fresh(conn, world), fresh(conn, world), fresh(conn, world)
    for product in (moved, still, netted):
        stock(conn, staff, product, wh, 10)
    count = open_count(conn, staff, wh)
    for product in (moved, still, netted):
        record(conn, staff, count["id"], product, 6)
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((moved, 1))),
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order,))
    stock(conn, staff, netted, wh, 2)
    call(conn, staff, "select public.adjust_stock(%s, %s, -2, 'oops')", (netted, wh))

    err = refused(conn, manager, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(err) == ("PT409", "count_stale")
    stale = json.loads(err.diag.message_detail)["lines"]
    assert {
        (s["product_id"], s["counted"], s["on_hand_then"], s["on_hand_now"]) for s in stale
    } == {
        (moved, 6, 10, 9),
        (netted, 6, 10, 10),
    }
    assert [on_hand(conn, p, wh) for p in (moved, still, netted)] == [9, 10, 10]
    status = conn.execute(
        "select status from public.stock_counts where id = %s", (count["id"],)
    ).fetchone()[0]
    assert status == "open"
    assert (
        conn.execute(
            "select count(*) from public.stock_movements where reason = %s",
            (f"count {count['id']}",),
        ).fetchone()[0]
        == 0
    )
    conn.commit()

    record(conn, staff, count["id"], moved, 5)
    record(conn, staff, count["id"], netted, 6)
    post(conn, manager, count["id"])
    assert [on_hand(conn, p, wh) for p in (moved, still, netted)] == [5, 6, 6]


@pytest.mark.parametrize(
    ("counted", "unit"),
    [
        ("NaN", "each"),
        ("Infinity", "each"),
        ("-Infinity", "each"),
        ("-1", "each"),
        ("0.5", "each"),
        ("0.0005", "kg"),
        ("100000000000", "kg"),
        (None, "each"),
    ],
)
def test_counted_numbers_are_checked(conn, world: World, counted, unit) -> None:
    """counted is finite, >= 0 and has no more decimals than the product's unit takes."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    product = fresh(conn, world)
    conn.execute("update public.products set unit = %s where id = %s", (unit, product))
    conn.commit()
    count = open_count(conn, staff, wh)
    err = refused(
        conn,
        staff,
        "select public.record_stock_count(%s, %s, %s::numeric)",
        (count["id"], product, counted),
    )
    assert error_of(err) == ("PT422", "validation_failed")
    assert err.diag.message_detail == "counted"


def test_zero_and_decimals_the_unit_takes_are_accepted(conn, world: World) -> None:
    """0 is a count; a kg product takes 3 decimals."""
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    each, kg = fresh(conn, world), fresh(conn, world)
    conn.execute("update public.products set unit = 'kg' where id = %s", (kg,))
    conn.commit()
    count = open_count(conn, staff, wh)
    assert record(conn, staff, count["id"], each, 0)["counted"] == 0
    assert record(conn, staff, count["id"], kg, "2.125")["counted"] == 2.125
    call(conn, staff, "select public.cancel_stock_count(%s)", (count["id"],))


def test_inactive_location_refuses_counts(conn, world: World) -> None:
    """An inactive location cannot be counted: open, record and post are refused
    (location_inactive); an open count there can still be cancelled."""
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    dormant = new_location(conn, world, active=False)
    err = refused(conn, staff, "select public.open_stock_count(%s)", (dormant,))
    assert error_of(err) == ("PT409", "location_inactive")

    place = new_location(conn, world)
    product = fresh(conn, world)
    stock(conn, staff, product, place, 4)
    count = open_count(conn, staff, place)
    record(conn, staff, count["id"], product, 3)
    conn.execute("update public.locations set active = false where id = %s", (place,))
    conn.commit()
    err = refused(conn, manager, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(err) == ("PT409", "location_inactive")
    err = refused(
        conn, staff, "select public.record_stock_count(%s, %s, 2)", (count["id"], product)
    )
    assert error_of(err) == ("PT409", "location_inactive")
    assert on_hand(conn, product, place) == 4
    done = call(conn, staff, "select public.cancel_stock_count(%s)", (count["id"],))[0][0]
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None


def test_lot_lines_adjust_their_lots(conn, world: World) -> None:
    """Lots are counted one by one: each lot ends at its count; a product is counted as a
    whole or by lot, not both; an unknown lot is 404."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world)
    stock(conn, staff, product, wh, 10, lot_number="L1", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 5, lot_number="L2", expiry_date="2032-01-01")
    stock(conn, staff, product, wh, 3)
    count = open_count(conn, staff, wh)
    line = record(conn, staff, count["id"], product, 8, "L1")
    assert (line["lot_number"], line["on_hand_at_count"]) == ("L1", 10)
    record(conn, staff, count["id"], product, 6, "L2")
    err = refused(
        conn, staff, "select public.record_stock_count(%s, %s, 18)", (count["id"], product)
    )
    assert error_of(err) == ("PT409", "count_line_conflict")
    err = refused(
        conn,
        staff,
        "select public.record_stock_count(%s, %s, 1, 'NOPE')",
        (count["id"], product),
    )
    assert error_of(err) == ("PT404", "not_found")
    done = post(conn, manager, count["id"])
    assert sorted((ln["lot_number"], ln["variance"]) for ln in done["lines"]) == [
        ("L1", -2),
        ("L2", 1),
    ]
    lots = conn.execute(
        "select lot_number, quantity from public.lots"
        " where product_id = %s and location_id = %s order by lot_number",
        (product, wh),
    ).fetchall()
    assert lots == [("L1", 8), ("L2", 6)]
    assert on_hand(conn, product, wh) == 17


def test_whole_count_loss_takes_usable_stock_then_unusable_lots(conn, world: World) -> None:
    """A whole-product loss leaves usable stock first, then quarantined (or expired) lots."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world)
    stock(conn, staff, product, wh, 4, lot_number="Q", expiry_date="2031-01-01")
    stock(conn, staff, product, wh, 6)
    conn.execute("select set_config('nimbus.ledger_write', 'on', true)")
    conn.execute("update public.lots set status = 'quarantined' where product_id = %s", (product,))
    conn.commit()
    count = open_count(conn, staff, wh)
    record(conn, staff, count["id"], product, 3)
    post(conn, manager, count["id"])
    assert on_hand(conn, product, wh) == 3
    lot = conn.execute(
        "select quantity from public.lots where product_id = %s", (product,)
    ).fetchone()[0]
    assert lot == 3


def test_a_count_below_reserved_stock_is_refused(conn, world: World) -> None:
    """Stock promised to a confirmed sales order stays: counting below it is count_below_reserved
    (the orders are cancelled or changed first); counting down to it posts."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world)
    stock(conn, staff, product, wh, 5)
    call(conn, staff, "select public.create_order('sales', %s, %s)", (wh, items((product, 4))))
    count = open_count(conn, staff, wh)
    record(conn, staff, count["id"], product, 3)
    err = refused(conn, manager, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(err) == ("PT409", "count_below_reserved")
    short = json.loads(err.diag.message_detail)["products"]
    assert [(s["product_id"], s["counted"], s["reserved"]) for s in short] == [(product, 3, 4)]
    record(conn, staff, count["id"], product, 4)
    post(conn, manager, count["id"])
    assert on_hand(conn, product, wh) == 4


def test_empty_count_cannot_be_posted(conn, world: World) -> None:
    """A count without lines is not posted (validation_failed)."""
    staff, manager = world.a.users["staff"], world.a.users["manager"]
    count = open_count(conn, staff, world.a.locations["ST1"])
    err = refused(conn, manager, "select public.post_stock_count(%s)", (count["id"],))
    assert error_of(err) == ("PT422", "validation_failed")


def test_roles_and_tenancy(conn, world: World) -> None:
    """Viewers cannot count; another organization neither sees nor touches a count; only a
    manager or the user who opened it cancels it; clients cannot write the tables."""
    a, b = world.a, world.b
    wh = a.locations["WH1"]
    err = refused(conn, a.users["viewer"], "select public.open_stock_count(%s)", (wh,))
    assert error_of(err) == ("PT403", "forbidden")
    err = refused(conn, b.users["owner"], "select public.open_stock_count(%s)", (wh,))
    assert error_of(err) == ("PT404", "not_found")
    count = open_count(conn, a.users["staff"], wh)
    err = refused(
        conn,
        a.users["staff"],
        "select public.record_stock_count(%s, %s, 1)",
        (count["id"], b.products["P1"]),
    )
    assert error_of(err) == ("PT404", "not_found")
    record(conn, a.users["staff"], count["id"], a.products["P1"], 100)
    for fn, args in (
        ("record_stock_count(%s, %s, 1)", (count["id"], a.products["P1"])),
        ("post_stock_count(%s)", (count["id"],)),
        ("cancel_stock_count(%s)", (count["id"],)),
    ):
        err = refused(conn, b.users["owner"], f"select public.{fn}", args)
        assert error_of(err) == ("PT404", "not_found"), fn
    for table in ("stock_counts", "stock_count_lines"):
        seen = call(
            conn,
            b.users["owner"],
            f"select count(*) from public.{table} where count_id = %s"
            if table == "stock_count_lines"
            else f"select count(*) from public.{table} where id = %s",
            (count["id"],),
        )
        assert seen == [(0,)], table
        mine = call(
            conn,
            a.users["viewer"],
            f"select count(*) from public.{table} where organization_id = %s",
            (a.id,),
        )
        assert mine[0][0] > 0, table
        err = refused(conn, a.users["owner"], f"delete from public.{table}")
        assert err.sqlstate == "42501"
    other_staff = str(uuid.uuid4())
    conn.execute(
        "insert into auth.users (id, email) values (%s, %s)", (other_staff, f"{other_staff}@t.test")
    )
    conn.execute(
        "insert into public.memberships (user_id, organization_id, role) values (%s, %s, 'staff')",
        (other_staff, a.id),
    )
    conn.commit()
    try:
        err = refused(conn, other_staff, "select public.cancel_stock_count(%s)", (count["id"],))
    finally:
        # The shared world's organization keeps exactly its five members for other tests.
        conn.execute("delete from public.memberships where user_id = %s", (other_staff,))
        conn.commit()
    assert error_of(err) == ("PT403", "forbidden")
    done = call(conn, a.users["manager"], "select public.cancel_stock_count(%s)", (count["id"],))
    assert done[0][0]["status"] == "cancelled"
    assert on_hand(conn, a.products["P1"], wh) == 100


def test_deleting_an_organization_removes_its_counts(conn, world: World) -> None:
    """An owner deletes an organization with posted and open counts (lot lines included)."""
    owner = new_user(conn)
    conn.commit()
    org = call(
        conn,
        owner,
        "select public.create_organization('Counted', %s) ->> 'id'",
        (f"counted-{uuid.uuid4().hex[:6]}",),
    )[0][0]
    location = str(
        conn.execute(
            "insert into public.locations (organization_id, name, code, kind)"
            " values (%s, 'W', 'W', 'warehouse') returning id",
            (org,),
        ).fetchone()[0]
    )
    product = make_product(conn, org, "CD-1")
    conn.commit()
    stock(conn, owner, product, location, 5, lot_number="D", expiry_date="2031-01-01")
    posted = open_count(conn, owner, location)
    record(conn, owner, posted["id"], product, 4, "D")
    post(conn, owner, posted["id"])
    still_open = open_count(conn, owner, location)
    record(conn, owner, still_open["id"], product, 4)
    assert call(conn, owner, "delete from public.organizations where id = %s returning id", (org,))
    left = conn.execute(
        "select (select count(*) from public.stock_counts where organization_id = %s)"
        " + (select count(*) from public.stock_count_lines where organization_id = %s)",
        (org, org),
    ).fetchone()[0]
    assert left == 0


def test_post_waits_for_a_movement_in_flight_and_reports_it(
    conn, database_url: str, world: World
) -> None:
    """A post that meets an uncommitted movement of a counted product waits for its stock row
    lock, then sees the movement and refuses the line as stale (nothing overwritten)."""
    staff, manager, wh = world.a.users["staff"], world.a.users["manager"], world.a.locations["WH1"]
    product = fresh(conn, world)
    stock(conn, staff, product, wh, 10)
    count = open_count(conn, staff, wh)
    record(conn, staff, count["id"], product, 9)
    outcome: dict[str, object] = {}

    def posting() -> None:
        with psycopg.connect(database_url) as poster:
            try:
                post(poster, manager, count["id"])
                outcome["result"] = "posted"
            except psycopg.Error as exc:
                outcome["result"] = error_of(exc)

    thread = threading.Thread(target=posting)
    with psycopg.connect(database_url) as mover:
        with acting(mover, staff):  # commits when the block ends
            mover.execute("select public.adjust_stock(%s, %s, -4, 'picked')", (product, wh))
            thread.start()
            thread.join(0.5)
            outcome["waited"] = thread.is_alive()
        thread.join(10)
    assert outcome["waited"], "the post must wait for the stock row lock"
    assert outcome["result"] == ("PT409", "count_stale")
    assert on_hand(conn, product, wh) == 6
