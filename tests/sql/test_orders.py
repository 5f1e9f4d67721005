"""Orders: concurrency through real connections, idempotency, the state machine, FEFO picking."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.db import as_role
from tests.support.domain import World, acting, call, claims, error_of, items, make_product, stock

# Each worker holds one real connection; max_connections is shared with other test sessions.
WORKERS = 16


def _run_concurrently(url: str, uid: str, calls: list[tuple[str, tuple]]) -> list:
    """Run each (query, params) in its own committed transaction on WORKERS connections.

    Returns per call the first row, or the (SQLSTATE, HINT) of the error it failed with. All
    connections are opened and every call queued before the work is released, so they overlap.
    """
    workers = min(WORKERS, len(calls))
    conns = [psycopg.connect(url) for _ in range(workers)]
    pool = list(conns)
    lock = threading.Lock()
    start = threading.Event()

    def run(job: tuple[str, tuple]):
        with lock:
            conn = pool.pop()
        try:
            start.wait(timeout=10)
            try:
                with acting(conn, uid):
                    return conn.execute(job[0], job[1]).fetchone()
            except psycopg.Error as exc:
                return error_of(exc)
        finally:
            with lock:
                pool.append(conn)

    try:
        with ThreadPoolExecutor(max_workers=workers) as executor:
            futures = [executor.submit(run, job) for job in calls]
            start.set()
            return [f.result(timeout=60) for f in futures]
    finally:
        for conn in conns:
            conn.close()


@pytest.fixture
def fresh(world: World, database_url: str):
    """A factory for a new product of organization a with `qty` in stock at WH1."""

    def make(qty, *, threshold: int | None = None) -> str:
        with psycopg.connect(database_url) as conn:
            product = make_product(
                conn, world.a.id, f"T-{uuid.uuid4().hex[:10]}", threshold=threshold
            )
            conn.commit()
            if qty:
                stock(conn, world.a.users["staff"], product, world.a.locations["WH1"], qty)
        return product

    return make


def test_hundred_concurrent_orders_on_ten_units(world: World, database_url: str, fresh) -> None:
    """100 concurrent single-unit orders on 10 in stock: exactly 10 succeed, 90 are refused."""
    product = fresh(10)
    wh = world.a.locations["WH1"]
    query = "select public.create_order('sales', %s, %s) ->> 'id'"
    outcomes = _run_concurrently(
        database_url, world.a.users["staff"], [(query, (wh, items((product, 1))))] * 100
    )
    created = [o[0] for o in outcomes if len(o) == 1]
    refused = [o for o in outcomes if len(o) == 2]
    assert len(created) == 10
    assert refused == [("PT409", "insufficient_stock")] * 90
    with psycopg.connect(database_url) as conn:
        on_hand, reserved = conn.execute(
            "select on_hand, reserved from public.stock_levels where product_id = %s", (product,)
        ).fetchone()
        assert (on_hand, reserved) == (10, 10)
        assert (
            conn.execute(
                "select count(*) from public.order_items where product_id = %s", (product,)
            ).fetchone()[0]
            == 10
        )
        for order_id in created:
            call(
                conn,
                world.a.users["staff"],
                "select public.update_order_status(%s, 'fulfilled')",
                (order_id,),
            )
        on_hand, reserved = conn.execute(
            "select on_hand, reserved from public.stock_levels where product_id = %s", (product,)
        ).fetchone()
    assert (on_hand, reserved) == (0, 0)


def test_crossing_orders_do_not_deadlock(world: World, database_url: str, fresh) -> None:
    """Orders on (A, B) and (B, A) at the same time all succeed: locks follow one order."""
    a, b = fresh(1000), fresh(1000)
    wh = world.a.locations["WH1"]
    query = "select public.create_order('sales', %s, %s) ->> 'id'"
    jobs = [(query, (wh, items((a, 1), (b, 1)))), (query, (wh, items((b, 1), (a, 1))))] * 30
    outcomes = _run_concurrently(database_url, world.a.users["staff"], jobs)
    assert all(len(o) == 1 for o in outcomes), [o for o in outcomes if len(o) != 1]
    with psycopg.connect(database_url) as conn:
        reserved = conn.execute(
            "select array_agg(reserved order by product_id) from public.stock_levels"
            " where product_id in (%s, %s)",
            (a, b),
        ).fetchone()[0]
    assert reserved == [60, 60]


def test_same_idempotency_key_in_parallel_creates_one_order(
    world: World, database_url: str, fresh
) -> None:
    """The same key and body sent 10 times at once: one order, every caller gets it back."""
    product = fresh(50)
    key = f"key-{uuid.uuid4()}"
    query = "select public.create_order('sales', %s, %s, idempotency_key => %s)"
    body = (world.a.locations["WH1"], items((product, 2)), key)
    outcomes = _run_concurrently(database_url, world.a.users["staff"], [(query, body)] * 10)
    assert all(len(o) == 1 for o in outcomes), outcomes
    assert len({json.dumps(o[0], sort_keys=True) for o in outcomes}) == 1
    with psycopg.connect(database_url) as conn:
        assert (
            conn.execute(
                "select count(*) from public.order_items where product_id = %s", (product,)
            ).fetchone()[0]
            == 1
        )
        assert (
            conn.execute(
                "select reserved from public.stock_levels where product_id = %s", (product,)
            ).fetchone()[0]
            == 2
        )
        with pytest.raises(psycopg.Error) as caught, acting(conn, world.a.users["staff"]):
            conn.execute(query, (world.a.locations["WH1"], items((product, 3)), key))
    assert error_of(caught.value) == ("PT422", "idempotency_conflict")


def test_idempotency_key_of_another_user_conflicts(conn, world: World, fresh) -> None:
    """A key is the sender's: another user of the organization reusing it gets a conflict."""
    product = fresh(5)
    query = "select public.create_order('sales', %s, %s, idempotency_key => 'shared')"
    params = (world.a.locations["WH1"], items((product, 1)))
    call(conn, world.a.users["staff"], query, params)
    with pytest.raises(psycopg.Error) as caught, acting(conn, world.a.users["manager"]):
        conn.execute(query, params)
    assert error_of(caught.value) == ("PT422", "idempotency_conflict")


def test_insufficient_stock_names_products_and_writes_nothing(conn, world: World, fresh) -> None:
    """A sales order with one unmet line fails naming that product, leaving no trace."""
    plenty, scarce = fresh(100), fresh(1)
    before = conn.execute("select count(*) from public.orders").fetchone()[0]
    with pytest.raises(psycopg.Error) as caught, acting(conn, world.a.users["staff"]):
        conn.execute(
            "select public.create_order('sales', %s, %s)",
            (world.a.locations["WH1"], items((plenty, 5), (scarce, 2))),
        )
    assert error_of(caught.value) == ("PT409", "insufficient_stock")
    detail = json.loads(caught.value.diag.message_detail)
    assert [p["product_id"] for p in detail["products"]] == [scarce]
    assert conn.execute("select count(*) from public.orders").fetchone()[0] == before
    assert (
        conn.execute(
            "select reserved from public.stock_levels where product_id = %s", (plenty,)
        ).fetchone()[0]
        == 0
    )


LEGAL = {
    "sales": {
        ("draft", "confirmed"),
        ("draft", "cancelled"),
        ("confirmed", "cancelled"),
        ("confirmed", "fulfilled"),
    },
    "purchase": {
        ("draft", "confirmed"),
        ("draft", "cancelled"),
        ("confirmed", "cancelled"),
        ("confirmed", "received"),
    },
}
PATH = {
    "draft": [],
    "confirmed": ["confirmed"],
    "fulfilled": ["confirmed", "fulfilled"],
    "received": ["confirmed", "received"],
    "cancelled": ["cancelled"],
}
STATUSES = ("draft", "confirmed", "fulfilled", "received", "cancelled")


@pytest.mark.parametrize("kind", ["sales", "purchase"])
def test_state_machine(conn, world: World, kind: str) -> None:
    """Every (from, to) pair: legal transitions succeed, every other one is invalid_transition."""
    wh, product = world.a.locations["WH1"], world.a.products["P1"]
    with as_role(conn, "authenticated", claims(world.a.users["manager"])):
        for start in STATUSES:
            if (kind, start) in {("sales", "received"), ("purchase", "fulfilled")}:
                continue
            for target in STATUSES:
                with conn.transaction(force_rollback=True):
                    order = conn.execute(
                        "select public.create_order(%s, %s, %s, status => 'draft') ->> 'id'",
                        (kind, wh, items((product, 1))),
                    ).fetchone()[0]
                    for step in PATH[start]:
                        conn.execute("select public.update_order_status(%s, %s)", (order, step))
                    try:
                        with conn.transaction():
                            status = conn.execute(
                                "select public.update_order_status(%s, %s) ->> 'status'",
                                (order, target),
                            ).fetchone()[0]
                    except psycopg.Error as exc:
                        assert (start, target) not in LEGAL[kind]
                        assert error_of(exc) == ("PT409", "invalid_transition"), (start, target)
                    else:
                        assert (start, target) in LEGAL[kind], (start, target)
                        assert status == target


def test_cancel_releases_reservation_and_writes_no_ledger(conn, world: World, fresh) -> None:
    """Confirming reserves, cancelling releases; neither moves stock."""
    product = fresh(10)
    staff = world.a.users["staff"]
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (world.a.locations["WH1"], items((product, 4))),
    )[0][0]
    level = "select on_hand, reserved from public.stock_levels where product_id = %s"
    assert conn.execute(level, (product,)).fetchone() == (10, 4)
    conn.commit()
    call(conn, staff, "select public.update_order_status(%s, 'cancelled')", (order,))
    assert conn.execute(level, (product,)).fetchone() == (10, 0)
    assert (
        conn.execute(
            "select count(*) from public.stock_movements where order_id = %s", (order,)
        ).fetchone()[0]
        == 0
    )


def test_fulfilment_picks_earliest_expiring_lots_first(conn, world: World, fresh) -> None:
    """FEFO: a sale takes the earliest expiry first, undated lots and loose stock last."""
    product = fresh(0)
    staff, wh = world.a.users["staff"], world.a.locations["WH1"]
    stock(conn, staff, product, wh, 5, lot_number="LATE", expiry_date="2031-06-01")
    stock(conn, staff, product, wh, 5, lot_number="NODATE")
    stock(conn, staff, product, wh, 4, lot_number="EARLY", expiry_date="2030-01-01")
    stock(conn, staff, product, wh, 3)
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s) ->> 'id'",
        (wh, items((product, 7))),
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order,))
    lots = dict(
        conn.execute(
            "select lot_number, quantity from public.lots where product_id = %s", (product,)
        ).fetchall()
    )
    assert lots == {"EARLY": 0, "LATE": 2, "NODATE": 5}
    moves = conn.execute(
        "select l.lot_number, m.quantity, m.kind from public.stock_movements as m"
        " join public.lots as l on l.id = m.lot_id where m.order_id = %s order by m.id",
        (order,),
    ).fetchall()
    assert moves == [("EARLY", -4, "sale"), ("LATE", -3, "sale")]
    assert conn.execute(
        "select status, completed_at is not null from public.orders where id = %s", (order,)
    ).fetchone() == ("fulfilled", True)


def test_receiving_purchase_writes_receipts_into_lots(conn, world: World, fresh) -> None:
    """Receiving a purchase order adds stock as receipts, into the given or a generated lot."""
    given, generated = fresh(0), fresh(0)
    manager, wh = world.a.users["manager"], world.a.locations["WH1"]
    supplier = conn.execute(
        "insert into public.suppliers (organization_id, name) values (%s, %s) returning id::text",
        (world.a.id, f"Supplier {uuid.uuid4().hex[:6]}"),
    ).fetchone()[0]
    order = call(
        conn,
        manager,
        "select public.create_order('purchase', %s, %s, supplier_id => %s)",
        (
            wh,
            Jsonb(
                [
                    {"product_id": given, "quantity": 12, "unit_price": 3.5},
                    {"product_id": generated, "quantity": 6},
                ]
            ),
            supplier,
        ),
    )[0][0]
    assert order["status"] == "confirmed"
    call(
        conn,
        manager,
        "select public.update_order_status(%s, 'received', %s)",
        (
            order["id"],
            Jsonb([{"product_id": given, "lot_number": "SUP-77", "expiry_date": "2031-02-03"}]),
        ),
    )
    rows = conn.execute(
        "select l.product_id::text, l.lot_number, l.expiry_date::text, l.quantity, m.unit_cost"
        " from public.stock_movements as m join public.lots as l on l.id = m.lot_id"
        " where m.order_id = %s and m.kind = 'receipt'",
        (order["id"],),
    ).fetchall()
    assert sorted(rows) == sorted(
        [
            (given, "SUP-77", "2031-02-03", 12, 3.5),
            (generated, f"PO{order['number']}-2", None, 6, 5),
        ]
    )
    assert (
        conn.execute(
            "select on_hand from public.stock_levels where product_id = %s", (given,)
        ).fetchone()[0]
        == 12
    )


def test_order_response_shape(conn, world: World, fresh) -> None:
    """create_order returns the order row with its items, numbered per organization."""
    product = fresh(3)
    order = call(
        conn,
        world.a.users["staff"],
        "select public.create_order('sales', %s, %s, customer_name => 'Ann')",
        (world.a.locations["WH1"], items((product, 2))),
    )[0][0]
    assert order["status"] == "confirmed" and order["kind"] == "sales"
    assert order["customer_name"] == "Ann" and order["number"] > 0
    assert [(i["product_id"], i["quantity"], i["line_no"]) for i in order["items"]] == [
        (product, 2, 1)
    ]
    assert order["items"][0]["unit_price"] == 10


@pytest.mark.parametrize(
    "bad_items",
    [[], [{"product_id": None, "quantity": 1}], [{"quantity": 1}], "dup", "zero"],
)
def test_order_validation(conn, world: World, bad_items) -> None:
    """Empty items, missing products, duplicates and non-positive quantities are refused."""
    p1 = world.a.products["P1"]
    if bad_items == "dup":
        bad_items = [{"product_id": p1, "quantity": 1}, {"product_id": p1, "quantity": 1}]
    elif bad_items == "zero":
        bad_items = [{"product_id": p1, "quantity": 0}]
    with pytest.raises(psycopg.Error) as caught, acting(conn, world.a.users["staff"]):
        conn.execute(
            "select public.create_order('sales', %s, %s)",
            (world.a.locations["WH1"], Jsonb(bad_items)),
        )
    assert error_of(caught.value) == ("PT422", "validation_failed")
