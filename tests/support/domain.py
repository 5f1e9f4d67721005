"""Inventory test world: two organizations with a user per role, locations, products and stock.

Stock is put in place through the domain functions (adjust_stock), as a client would, so the
ledger invariant holds from the start. Helpers here run SQL as a user the way PostgREST does
(role authenticated, request.jwt.claims) and inspect deliberate errors (SQLSTATE PTxxx + hint).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

ROLES = ("owner", "admin", "manager", "staff", "viewer")
RANK = {role: rank for rank, role in enumerate(reversed(ROLES), start=1)}


@dataclass
class Org:
    """One organization of the test world and the ids a test needs."""

    id: str
    slug: str
    users: dict[str, str] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    spare: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """Two organizations (a, b) and a user who belongs to neither."""

    url: str
    a: Org
    b: Org
    outsider: str


def claims(uid: str | None) -> dict:
    """JWT claims as PostgREST sets them for an authenticated user."""
    return {"sub": uid, "role": "authenticated", "aud": "authenticated"} if uid else {}


@contextmanager
def acting(conn: psycopg.Connection, uid: str, *, commit: bool = True) -> Iterator[None]:
    """A transaction run as `uid` with role authenticated; committed unless commit=False.

    A transaction already open on conn (superuser reads or setup) is committed first, so the
    role and claims never leak into it.
    """
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
        conn.commit()
    with conn.transaction(force_rollback=not commit):
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims(uid)),)
        )
        conn.execute("set local role authenticated")
        yield


def call(conn: psycopg.Connection, uid: str, query: str, params=()) -> list[tuple]:
    """Run one statement as `uid` in its own committed transaction; return its rows."""
    with acting(conn, uid):
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def error_of(exc: psycopg.Error) -> tuple[str | None, str | None]:
    """(SQLSTATE, HINT) of a database error: the HTTP status and the stable code."""
    return exc.sqlstate, exc.diag.message_hint


def items(*lines: tuple[str, float]) -> Jsonb:
    """create_order items from (product_id, quantity) pairs."""
    return Jsonb([{"product_id": p, "quantity": q} for p, q in lines])


def new_user(conn: psycopg.Connection) -> str:
    """Insert a row into auth.users (as the connection's superuser) and return its id."""
    uid = str(uuid.uuid4())
    conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, f"{uid}@example.test"))
    return uid


def make_product(
    conn: psycopg.Connection, org: str, sku: str, *, threshold: int | None = None, price=10
) -> str:
    """Insert a product as the superuser (catalog rows need no function) and return its id."""
    return str(
        conn.execute(
            "insert into public.products (organization_id, sku, barcode, name, price, unit_cost,"
            " low_stock_threshold) values (%s, %s, %s, %s, %s, %s, %s) returning id",
            (org, sku, f"bc-{sku}", f"Product {sku}", price, price / 2, threshold),
        ).fetchone()[0]
    )


def stock(conn: psycopg.Connection, uid: str, product: str, location: str, qty, **lot) -> None:
    """Add stock through adjust_stock as `uid` (committed)."""
    call(
        conn,
        uid,
        "select public.adjust_stock(%s, %s, %s, 'initial stock', %s, %s)",
        (product, location, qty, lot.get("lot_number"), lot.get("expiry_date")),
    )


def _org(conn: psycopg.Connection, tag: str) -> Org:
    owner = new_user(conn)
    conn.commit()
    slug = f"{tag}-{uuid.uuid4().hex[:8]}"
    row = call(conn, owner, "select public.create_organization(%s, %s)", (f"Org {tag}", slug))
    org = Org(id=row[0][0]["id"], slug=slug, users={"owner": owner})
    for role in ROLES[1:]:
        uid = new_user(conn)
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role) values (%s, %s, %s)",
            (uid, org.id, role),
        )
        org.users[role] = uid
    for code, kind in (("WH1", "warehouse"), ("ST1", "store"), ("SPARE", "store")):
        org.locations[code] = str(
            conn.execute(
                "insert into public.locations (organization_id, name, code, kind)"
                " values (%s, %s, %s, %s) returning id",
                (org.id, f"{tag} {code}", code, kind),
            ).fetchone()[0]
        )
    org.spare["locations"] = org.locations.pop("SPARE")
    for sku in ("P1", "P2", "P3"):
        org.products[sku] = make_product(conn, org.id, f"{tag}-{sku}")
    org.spare["products"] = make_product(conn, org.id, f"{tag}-SPARE")
    org.spare["categories"] = str(
        conn.execute(
            "insert into public.categories (organization_id, name) values (%s, 'Spare')"
            " returning id",
            (org.id,),
        ).fetchone()[0]
    )
    org.spare["suppliers"] = str(
        conn.execute(
            "insert into public.suppliers (organization_id, name) values (%s, 'Spare')"
            " returning id",
            (org.id,),
        ).fetchone()[0]
    )
    conn.commit()
    for sku in ("P1", "P2", "P3"):
        stock(conn, org.users["manager"], org.products[sku], org.locations["WH1"], 100)
    stock(
        conn,
        org.users["staff"],
        org.products["P3"],
        org.locations["WH1"],
        10,
        lot_number="LOT-1",
        expiry_date="2030-01-01",
    )
    staff = org.users["staff"]
    order = call(
        conn,
        staff,
        "select public.create_order('sales', %s, %s, idempotency_key => 'world')",
        (org.locations["WH1"], items((org.products["P2"], 1))),
    )[0][0]
    call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
    org.spare["orders"] = order["id"]
    return org


def build_world(database_url: str) -> World:
    """Create organizations a and b with a user per role, two locations and stocked products."""
    with psycopg.connect(database_url) as conn:
        a = _org(conn, "a")
        b = _org(conn, "b")
        outsider = new_user(conn)
        conn.commit()
    return World(url=database_url, a=a, b=b, outsider=outsider)


LEDGER_MISMATCHES = """
select coalesce(s.product_id, m.product_id), coalesce(s.location_id, m.location_id),
  s.on_hand, m.total
from public.stock_levels as s
full join (
  select product_id, location_id, sum(quantity) as total
  from public.stock_movements group by product_id, location_id
) as m on m.product_id = s.product_id and m.location_id = s.location_id
where coalesce(s.on_hand, 0) <> coalesce(m.total, 0)
union all
select s.product_id, s.location_id, s.on_hand, l.total
from public.stock_levels as s
join (
  select product_id, location_id, sum(quantity) as total
  from public.lots group by product_id, location_id
) as l on l.product_id = s.product_id and l.location_id = s.location_id
where l.total > s.on_hand
"""


def ledger_mismatches(database_url: str) -> list[tuple]:
    """(product, location, on_hand, sum) where on_hand differs from the ledger or lots exceed it."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(LEDGER_MISMATCHES).fetchall()
