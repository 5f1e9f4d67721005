"""Property: no request to an exposed stock or order function, however hostile its numbers,
breaks the inventory (issue 12).

Hypothesis generates runs of up to 15 steps against one fresh organization, through the proxy's
/rest/v1/rpc as its staff user (its manager where a function needs manager): adjust_stock,
transfer_stock, write_off_stock, create_order, update_order_status, fulfil_order,
receive_order, return_order, close_order and stock counts (open, record, post). Functions that
do not exist in the database under test are left out. Every number a step sends is either a
valid one for its field or an adversarial one: NaN and +-Infinity (as bare JSON tokens and as
strings), 1e20, 1e11, 0.0005, -0.0, 0.5 of a product counted in "each", non-numeric strings,
booleans, null. After every request:

- no 5xx;
- a request carrying an invalid number is refused with a 4xx - 422 (PT422 validation_failed)
  whenever the number reached the database (everything but unparseable JSON and non-numeric
  text in a numeric parameter, which PostgREST refuses with 400) - and writes no movement;
- the full inventory invariant (tests.support.invariant) holds.

Derandomized (the same runs every time, no example database) and without shrinking, so it
stays under a minute; a failure prints the steps of the failing run up to the failing request.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from proxy.gate.tokens import mint
from tests.support.domain import call, make_product, new_user
from tests.support.invariant import inventory_violations

# -- Numbers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number as a client might send it: a JSON value, or a bare token that is not JSON."""

    value: object = None
    raw: str | None = None

    def __repr__(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.value)

    @property
    def decimal(self) -> Decimal | None:
        """What the database would read, None when it reads no number (text, bool, null, raw)."""
        if self.raw is not None or self.value is None or isinstance(self.value, bool):
            return None
        try:
            return Decimal(
                json.dumps(self.value) if isinstance(self.value, float) else str(self.value)
            )
        except InvalidOperation:
            return None

    def valid(self, decimals: int, rule: str) -> bool:
        """Whether a correct implementation must accept it for a field with this many decimals:
        rule nonzero (a signed delta), positive (a quantity) or nonnegative (counts, money)."""
        d = self.decimal
        if d is None or not d.is_finite() or abs(d) >= Decimal("1e11"):
            return False
        if isinstance(self.value, str) and not _PLAIN.fullmatch(self.value):
            return False  # "1e5": JSON line items take plain decimal strings only
        if d != d.quantize(Decimal(1).scaleb(-decimals), rounding="ROUND_DOWN"):
            return False
        return {"nonzero": d != 0, "positive": d > 0, "nonnegative": d >= 0}[rule]

    def reaches_database(self, in_json_document: bool) -> bool:
        """Whether the function sees it (so a refusal must be its PT422), rather than PostgREST
        refusing the body (bare tokens) or the cast of a numeric parameter (non-numeric text)."""
        if self.raw is not None:
            return False
        if in_json_document or self.value is None:
            return True
        return self.decimal is not None


_PLAIN = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)")

# Hypothesis leans on the first entries (its "simplest" examples): the list starts with the
# numbers that reach the database, the bare tokens PostgREST refuses come later.
ADVERSARIAL = [
    Num("NaN"),
    Num(0.0005),
    Num(0.5),
    Num("Infinity"),
    Num(1e20),
    Num(-0.0),
    Num("-Infinity"),
    Num(None),
    Num(-0.0005),
    Num(100000000000),
    Num(-2.5),
    Num("1e20"),
    Num(99999999999),
    Num(-1e20),
    Num(raw="NaN"),
    Num("abc"),
    Num(raw="Infinity"),
    Num(True),
    Num(raw="-Infinity"),
    Num(""),
]
# Valid for every product (kg takes 0.125 and 1.5 too: those are "each" traps in disguise).
GOOD = [Num(n) for n in (5, 1, 2, 3, 8, 13, 20)] + [Num("3"), Num(0.125), Num(1.5)]
DELTAS = GOOD + [Num(n) for n in (-1, -2, -4, -10)]


def hostile(good: list[Num]) -> st.SearchStrategy[Num]:
    """Two valid numbers for each hostile one, so that runs build stock, orders and counts to
    attack."""
    return st.one_of(st.sampled_from(good), st.sampled_from(ADVERSARIAL), st.sampled_from(good))


numbers = hostile(GOOD)
deltas = hostile(DELTAS)

# -- The organization under test ----------------------------------------------------------------

PRODUCTS = {"each": ("each", 0), "kg": ("kg", 3), "lots": ("each", 0)}
LOCATIONS = ("WH", "ST", "OFF")  # OFF is inactive


@dataclass
class Shop:
    """A fresh organization: its ids, tokens and an HTTP client on the proxy."""

    url: str
    org: str
    http: httpx.Client
    tokens: dict[str, str]
    products: dict[str, str]
    locations: dict[str, str]
    functions: set[str]
    seen: Counter = field(default_factory=Counter)  # (function, status) -> requests


@pytest.fixture(scope="module")
def shop(database_url: str, proxy_url: str, jwt_secret: str):
    """One organization with staff and manager, two active locations and an inactive one, a
    product counted in each, one in kg and one kept in lots, stocked through the API."""
    with psycopg.connect(database_url) as conn:
        owner = new_user(conn)
        conn.commit()
        org = call(
            conn,
            owner,
            "select public.create_organization('Property shop', %s) ->> 'id'",
            (f"prop-{uuid.uuid4().hex[:8]}",),
        )[0][0]
        users = {}
        for role in ("staff", "manager"):
            users[role] = new_user(conn)
            conn.execute(
                "insert into public.memberships (user_id, organization_id, role)"
                " values (%s, %s, %s)",
                (users[role], org, role),
            )
        locations = {}
        for code in LOCATIONS:
            locations[code] = str(
                conn.execute(
                    "insert into public.locations (organization_id, name, code, kind)"
                    " values (%s, %s, %s, %s) returning id",
                    (org, f"Prop {code}", code, "warehouse" if code == "WH" else "store"),
                ).fetchone()[0]
            )
        products = {}
        for key, (unit, _decimals) in PRODUCTS.items():
            products[key] = make_product(conn, org, f"PROP-{key}-{uuid.uuid4().hex[:6]}", price=8)
            conn.execute(
                "update public.products set unit = %s where id = %s", (unit, products[key])
            )
        functions = {
            row[0]
            for row in conn.execute(
                "select p.proname from pg_proc as p join pg_namespace as n"
                " on n.oid = p.pronamespace where n.nspname = 'public'"
            ).fetchall()
        }
        conn.commit()
    tokens = {role: mint(jwt_secret, sub=uid) for role, uid in users.items()}
    http = httpx.Client(base_url=proxy_url + "/rest/v1/rpc", timeout=30)
    shop = Shop(database_url, org, http, tokens, products, locations, functions)
    wh, st_ = locations["WH"], locations["ST"]
    for product, location, qty, lot in (
        ("each", wh, 40, None),
        ("kg", wh, 25.5, None),
        ("lots", wh, 30, "L1"),
        ("lots", st_, 10, None),
    ):
        body = {
            "product_id": products[product],
            "location_id": location,
            "quantity_delta": qty,
            "reason": "opening",
        }
        if lot:
            body |= {"lot_number": lot, "expiry_date": "2031-01-01"}
        response = http.post("/adjust_stock", json=body, headers=shop_headers(shop, "staff"))
        assert response.status_code == 200, response.text
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "update public.locations set active = false where id = %s", (locations["OFF"],)
        )
    yield shop
    http.close()
    # What the runs exercised (shown with -s): a property that only ever met 4xx proves little.
    print("\nproperty runs, requests by (function, status):", dict(sorted(shop.seen.items())))


def shop_headers(shop: Shop, role: str) -> dict[str, str]:
    """Authorization and content type for a raw JSON body."""
    return {"Authorization": f"Bearer {shop.tokens[role]}", "Content-Type": "application/json"}


# -- Steps --------------------------------------------------------------------------------------


@dataclass
class Request:
    """One HTTP call a step makes, with the numbers it carries and the rule each must meet."""

    function: str
    role: str
    body: dict
    # (number, decimals, rule, inside a JSON document parameter)
    checks: list[tuple[Num, int, str, bool]] = field(default_factory=list)

    def encoded(self) -> bytes:
        """The JSON body with every Num spliced in (bare tokens included)."""
        slots: dict[str, str] = {}

        def plain(value):
            if isinstance(value, Num):
                key = f"__num_{len(slots)}__"
                slots[key] = repr(value)
                return key
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        text = json.dumps(plain(self.body))
        for key, token in slots.items():
            text = text.replace(json.dumps(key), token)
        return text.encode()

    @property
    def invalid(self) -> list[Num]:
        return [n for n, decimals, rule, _doc in self.checks if not n.valid(decimals, rule)]

    @property
    def must_be_422(self) -> bool:
        """Invalid, and every number of the request reaches the function (a bare token makes
        the whole body unparseable, text in a numeric parameter fails its cast: 400 first)."""
        return bool(self.invalid) and all(n.reaches_database(doc) for n, _d, _r, doc in self.checks)


@dataclass
class Run:
    """State of one generated run: orders created so far (id, kind, product keys)."""

    shop: Shop
    orders: list[tuple[str, str, list[str]]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def _decimals(key: str) -> int:
    return PRODUCTS[key][1]


products = st.sampled_from(sorted(PRODUCTS))
locations = st.sampled_from(["WH", "WH", "ST", "ST", "OFF"])
lots = st.sampled_from([None, None, "L1", "L2"])

orders = st.tuples(
    st.just("order"),
    st.sampled_from(["sales", "purchase"]),
    st.sampled_from(["WH", "ST"]),
    st.lists(st.tuples(products, numbers, st.none() | numbers), min_size=1, max_size=2),
)
# Orders come up twice as often as the rest: the order steps after them need one to act on.
steps = st.one_of(
    st.tuples(st.just("adjust"), products, locations, deltas, lots),
    orders,
    st.tuples(st.just("fulfil"), st.integers(0, 9), st.integers(0, 1), numbers),
    st.tuples(
        st.just("receive"), st.integers(0, 9), st.integers(0, 1), numbers, st.none() | numbers
    ),
    st.tuples(st.just("transfer"), products, locations, locations, numbers),
    orders,
    st.tuples(
        st.just("status"),
        st.integers(0, 9),
        st.sampled_from(["fulfilled", "received", "cancelled"]),
    ),
    st.tuples(st.just("return"), st.integers(0, 9), st.integers(0, 1), numbers),
    st.tuples(st.just("write_off"), products, locations, numbers),
    st.tuples(st.just("count"), st.sampled_from(["WH", "ST"]), products, numbers),
    st.tuples(st.just("close"), st.integers(0, 9)),
)


def _order(run: Run, index: int):
    return run.orders[index % len(run.orders)] if run.orders else None


def requests_for(run: Run, step: tuple) -> list[Request]:
    """The HTTP calls of one step (several for a stock count), or none when it cannot apply."""
    shop, kind = run.shop, step[0]
    p, loc = shop.products, shop.locations
    if kind == "adjust":
        _, product, location, qty, lot = step
        body = {"product_id": p[product], "location_id": loc[location], "quantity_delta": qty}
        body["reason"] = "property"
        if lot:
            body |= {"lot_number": lot, "expiry_date": "2031-01-01"}
        return [
            Request("adjust_stock", "staff", body, [(qty, _decimals(product), "nonzero", False)])
        ]
    if kind == "transfer":
        _, product, source, target, qty = step
        body = {
            "product_id": p[product],
            "from_location_id": loc[source],
            "to_location_id": loc[target],
            "quantity": qty,
        }
        return [
            Request("transfer_stock", "staff", body, [(qty, _decimals(product), "positive", False)])
        ]
    if kind == "write_off" and "write_off_stock" in shop.functions:
        _, product, location, qty = step
        body = {
            "product_id": p[product],
            "location_id": loc[location],
            "quantity": qty,
            "reason": "damaged",
        }
        return [
            Request(
                "write_off_stock", "manager", body, [(qty, _decimals(product), "positive", False)]
            )
        ]
    if kind == "order":
        _, order_kind, location, lines = step
        items, checks, seen = [], [], set()
        for product, qty, price in lines:
            if product in seen:
                continue
            seen.add(product)
            item = {"product_id": p[product], "quantity": qty}
            checks.append((qty, _decimals(product), "positive", True))
            if price is not None:
                item["unit_price"] = price
                checks.append((price, 2, "nonnegative", True))
            items.append(item)
        body = {"kind": order_kind, "location_id": loc[location], "items": items}
        role = "staff" if order_kind == "sales" else "manager"
        return [Request("create_order", role, body, checks)]
    if kind == "count":
        if "open_stock_count" not in shop.functions:
            return []
        return [Request("open_stock_count", "staff", {"location_id": loc[step[1]]})]
    order = (
        _order(run, step[1]) if kind in ("status", "close", "fulfil", "receive", "return") else None
    )
    if order is None:
        return []
    order_id, order_kind, order_products = order
    role = "staff" if order_kind == "sales" else "manager"
    if kind == "status":
        return [Request("update_order_status", role, {"order_id": order_id, "status": step[2]})]
    if kind == "close" and "close_order" in shop.functions:
        return [Request("close_order", role, {"order_id": order_id, "reason": "property"})]
    if kind in ("fulfil", "receive", "return"):
        function = {"fulfil": "fulfil_order", "receive": "receive_order", "return": "return_order"}
        if function[kind] not in shop.functions:
            return []
        product = order_products[step[2] % len(order_products)]
        line = {"product_id": p[product], "quantity": step[3]}
        checks = [(step[3], _decimals(product), "positive", True)]
        if kind == "receive" and step[4] is not None:
            line["unit_cost"] = step[4]
            checks.append((step[4], 4, "nonnegative", True))
        return [Request(function[kind], role, {"order_id": order_id, "lines": [line]}, checks)]
    return []


def _movements(shop: Shop) -> int:
    with psycopg.connect(shop.url) as conn:
        return conn.execute(
            "select count(*) from public.stock_movements where organization_id = %s", (shop.org,)
        ).fetchone()[0]


def _perform(run: Run, request: Request) -> httpx.Response:
    """Send one request and assert the properties; returns the response."""
    shop = run.shop
    before = _movements(shop)
    response = shop.http.post(
        "/" + request.function, content=request.encoded(), headers=shop_headers(shop, request.role)
    )
    shop.seen[(request.function, response.status_code)] += 1
    summary = f"{request.function} {request.encoded().decode()} -> {response.status_code}"
    run.log.append(summary + ("" if response.is_success else f" {response.text[:200]}"))
    trail = "\n  ".join(run.log)
    assert response.status_code < 500, f"5xx:\n  {trail}"
    if request.invalid:
        assert 400 <= response.status_code < 500, f"invalid number accepted:\n  {trail}"
        if request.must_be_422:
            assert response.status_code == 422, f"invalid number not a 422:\n  {trail}"
    if not response.is_success:
        assert _movements(shop) == before, f"a refused request moved stock:\n  {trail}"
    violations = inventory_violations(shop.url)
    assert violations == [], f"invariant broken: {violations[:5]}\n  {trail}"
    return response


def _run_step(run: Run, step: tuple) -> None:
    for request in requests_for(run, step):
        response = _perform(run, request)
        if not response.is_success:
            return
        if request.function == "create_order":
            body = response.json()
            keys = [
                key
                for item in request.body["items"]
                for key, pid in run.shop.products.items()
                if pid == item["product_id"]
            ]
            run.orders.append((body["id"], body["kind"], keys))
        if request.function == "open_stock_count":
            count_id = response.json()["id"]
            _, _, product, counted = step
            for follow in (
                Request(
                    "record_stock_count",
                    "staff",
                    {
                        "count_id": count_id,
                        "product_id": run.shop.products[product],
                        "counted": counted,
                    },
                    [(counted, _decimals(product), "nonnegative", False)],
                ),
                Request("post_stock_count", "manager", {"count_id": count_id}),
            ):
                if not _perform(run, follow).is_success:
                    if "cancel_stock_count" in run.shop.functions:
                        _perform(
                            run, Request("cancel_stock_count", "staff", {"count_id": count_id})
                        )
                    return


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(run_steps=st.lists(steps, min_size=8, max_size=15))
# Two runs always made first: every order function on an order that exists, attacked in turn.
@example(
    run_steps=[
        ("order", "sales", "WH", [("each", Num(6), None), ("kg", Num(2.5), Num(4.25))]),
        ("fulfil", 0, 0, Num("NaN")),
        ("fulfil", 0, 0, Num(0.5)),
        ("fulfil", 0, 0, Num(2)),
        ("fulfil", 0, 1, Num(0.0005)),
        ("fulfil", 0, 1, Num(1.5)),
        ("return", 0, 0, Num("Infinity")),
        ("return", 0, 0, Num(1)),
        ("return", 0, 1, Num(0.5)),
        ("close", 0),
        ("adjust", "each", "WH", Num(-0.0), None),
        ("transfer", "kg", "WH", "ST", Num(0.0005)),
        ("transfer", "kg", "WH", "ST", Num(0.125)),
        ("count", "WH", "kg", Num(0.0005)),
        ("count", "ST", "kg", Num(0.5)),
    ]
)
@example(
    run_steps=[
        ("order", "purchase", "ST", [("lots", Num(10), Num(3)), ("kg", Num(1.5), None)]),
        ("receive", 0, 0, Num(4), Num("NaN")),
        ("receive", 0, 0, Num(4), Num(0.00005)),
        ("receive", 0, 0, Num(4), Num(2.5)),
        ("receive", 0, 1, Num(1e20), None),
        ("receive", 0, 1, Num(1), Num(7)),
        ("return", 0, 0, Num(-0.0)),
        ("return", 0, 0, Num(1)),
        ("write_off", "lots", "ST", Num(0.5)),
        ("write_off", "lots", "ST", Num(1)),
        ("close", 0),
        ("order", "sales", "ST", [("lots", Num(3), Num("NaN"))]),
        ("order", "sales", "ST", [("lots", Num(3), Num(9.99))]),
        ("status", 1, "cancelled"),
        ("count", "ST", "lots", Num(99999999999)),
    ]
)
def test_no_request_breaks_the_inventory(shop: Shop, run_steps: list[tuple]) -> None:
    """Any sequence of valid and hostile requests: no 5xx, invalid numbers refused (422 when
    the function saw them) without a trace, and the full invariant after every request."""
    run = Run(shop)
    for step in run_steps:
        _run_step(run, step)


def test_the_oracle_knows_a_bad_number() -> None:
    """The test's own oracle: every adversarial number but 99999999999 (valid, next to the
    column's limit) is invalid for a quantity of an "each" product; the good ones are valid
    deltas of a kg product."""
    for n in ADVERSARIAL:
        assert n.valid(0, "positive") == (n == Num(99999999999)), n
    assert all(n.valid(3, "nonzero") for n in DELTAS)
    assert all(n.valid(3, "positive") for n in GOOD)
    assert Num(-0.0).decimal == 0 and not Num(-0.0).valid(3, "nonzero")
    assert math.isnan(float(Num("NaN").decimal))
    assert not Num(0.0005).valid(3, "positive") and Num(0.5).valid(3, "positive")
