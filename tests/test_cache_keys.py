"""What makes two requests the same cache entry, what an entry costs, what it depends on."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import orjson

from proxy.cache.cachekey import normalise_query
from proxy.cache.dependencies import (
    ALL,
    REFS,
    TABLES,
    TENANCY,
    bucket,
    place_bucket,
    read_dependencies,
    read_order,
    stock_scope,
    write_names,
    write_targets,
)
from proxy.cache.generations import Generations
from proxy.cache.listener import names_of
from proxy.cache.readquery import first, parse_query, values
from proxy.cache.store import ENTRY_OVERHEAD, L1, Entry, ResponseCache
from proxy.ops.metrics import CACHE_STORES_DROPPED


def test_l1_counts_an_overhead_per_entry() -> None:
    """A thousand empty answers are not free: the L1 budget bounds the number of entries."""
    l1 = L1(max_bytes=100 * ENTRY_OVERHEAD)
    for i in range(10_000):
        l1.put(("k", str(i)), Entry((0,), 200, (), b"[]", '"e"', time.time() + 60))
    assert len(l1.entries) <= 100
    assert l1.size <= l1.max_bytes


def test_rpc_reads_depend_on_embedded_tables_too() -> None:
    """GET rpc/lookup_product?select=id,stock_levels(on_hand) depends on stock_levels."""
    deps = read_dependencies("rpc/lookup_product", "id,stock_levels(on_hand)")
    assert {"products", "stock_levels", TENANCY} <= deps
    assert read_dependencies("rpc/lookup_product", "id,nope(x)") == frozenset({ALL})
    quoted = read_dependencies("products", 'id,"stock_levels"(on_hand)')
    assert "stock_levels" in quoted


async def test_cascading_writes_move_every_table_of_their_organizations() -> None:
    """Deleting an organization (or an order) cascades: such a write moves every table of the
    caller's organizations — their memberships too, through which their members read — and
    nothing of another organization's. A write whose targets are not known moves the epoch,
    which every generation vector starts with (moving ALL alone moved only the readers that
    depend on everything, found by a cold review). Updating one does not cascade."""
    from proxy.cache.dependencies import EPOCH, SIDE_EFFECTS, TENANCY, changed_names
    from proxy.cache.tenants import read_names

    assert write_targets("organizations") == write_targets("organizations", "DELETE") == TABLES
    assert write_targets("orders", "DELETE") == TABLES
    assert write_targets("organizations", "PATCH") == {"organizations"} | SIDE_EFFECTS
    assert write_targets("rpc/not_declared") == {ALL}
    assert changed_names(ALL, None) == {EPOCH}
    u, o, p = (f"{c * 8}-0000-4000-8000-{c * 12}" for c in "abc")
    mine = [
        read_names(deps, frozenset({o}), None, u)
        for deps in ((TENANCY,), ("products", TENANCY), ("stock_levels", TENANCY), (ALL,))
    ]
    theirs = [read_names(("products", TENANCY), frozenset({p}), None, u.replace("a", "d"))]
    generations = Generations(None, "unit")
    before = [generations.vector(deps) for deps in (*mine, *theirs)]
    await generations.bump(write_names("organizations", None, [o], method="DELETE"))
    after = [generations.vector(deps) for deps in (*mine, *theirs)]
    assert [b != a for b, a in zip(before, after, strict=True)] == [True] * len(mine) + [False]
    moved = generations.vector(("products#x",))
    await generations.bump(changed_names(ALL, None))
    assert generations.vector(("products#x",)) != moved


# --- Reading a query as PostgREST does (issue 13, point 2) ---------------------------------

X = "6f0c3e1a-0000-4000-8000-000000000001"
Y = "6f0c3e1a-0000-4000-8000-000000000002"  # locations
Z = "6f0c3e1a-0000-4000-8000-000000000003"


def test_semicolons_separate_parameters_as_in_postgrest() -> None:
    """`id=eq.X;select=id,stock_levels(...)` names a select that embeds stock_levels."""
    params = parse_query(f"id=eq.{X};select=id,stock_levels(location_id,on_hand)")
    assert params == (("id", f"eq.{X}"), ("select", "id,stock_levels(location_id,on_hand)"))
    deps = read_order("products", first(params, "select"))
    assert "stock_levels" in deps
    assert normalise_query(f"select=a;id=eq.{X}&b=1") == f"select=a;id=eq.{X}&b=1"


def test_encoded_names_and_values_are_decoded() -> None:
    """`sel%65ct` is select; `+` is a space; the first of two selects is the one PostgREST uses."""
    params = parse_query("sel%65ct=id,%73tock_levels(on_hand)&select=id&name=eq.a+b")
    assert first(params, "select") == "id,stock_levels(on_hand)"
    assert values(params, "name") == ["eq.a b"]
    # Two spellings of one name keep their order in the key (they are not sorted apart).
    assert normalise_query("select=a&%73elect=b") != normalise_query("%73elect=b&select=a")


def test_doubtful_queries_are_not_read() -> None:
    """A malformed escape, a parameter without `=`, a NUL or invalid UTF-8: not cacheable."""
    for raw in ("limit=2%zz", "select", "a=%00", "a=%ff%fe", "%ZZ=1"):
        assert parse_query(raw) is None, raw
    assert parse_query("") == ()
    assert parse_query("a=1&&b=2;") == (("a", "1"), ("b", "2"))


def test_every_table_an_embed_reads_is_a_dependency() -> None:
    """Hints, aliases, spreads, nesting and many-to-many junctions: products?select=locations()
    reads stock_levels, lots and stock_movements, which PostgREST joins through."""
    deps = read_dependencies("products", "id,locations(name)")
    assert {"products", "locations", "stock_levels", "lots", "stock_movements"} <= deps
    hinted = read_dependencies("products", "id,where:locations!stock_levels!inner(name)")
    assert {"locations", "stock_levels"} <= hinted
    nested = read_dependencies("orders", "id,order_items(id,...products(sku,categories(name)))")
    assert {"orders", "order_items", "products", "categories"} <= nested
    for unknown in ("id,count()", "id,on_hand.sum()", "id,nope(x)", "id,stock_levels(x", 'a,"b'):
        assert read_dependencies("products", unknown) == frozenset({ALL}), unknown


def test_product_scoping_only_where_provably_complete() -> None:
    """A read of one product's stock is scoped to its bucket, unless its select reaches other
    products' stock rows (nested, or through a junction)."""
    assert bucket("stock_levels", X) in read_order("stock_levels", "on_hand", X)
    for select in (
        "product_id,on_hand,locations(stock_levels(product_id,on_hand))",
        "on_hand,products(locations(name))",  # products -> locations through stock_levels
        "on_hand,lots(quantity)",
        "on_hand,locations(lots(quantity))",
    ):
        deps = read_order("stock_levels", select, X)
        assert "stock_levels" in deps and bucket("stock_levels", X) not in deps, select


def test_place_scoping_for_one_product_at_one_location() -> None:
    """A read of one product's stock at one location depends on that pair's bucket (neither
    the product's nor the table); with an embed reaching other products' rows, on the table.
    Writes name their pairs from the RPC's arguments (one product_id, every location argument,
    each at most once and no escapes), or none; the trigger's payload from its "places"."""
    here = place_bucket("stock_levels", X, Y)
    assert read_order("stock_levels", "on_hand", X, Y) == (TENANCY, here)
    assert "stock_levels" in read_order("stock_levels", "on_hand,lots(quantity)", X, Y)
    adjust = f'{{"product_id": "{X}", "location_id": "{Y}", "quantity_delta": 1}}'.encode()
    assert here in write_names("rpc/adjust_stock", adjust)
    assert bucket("stock_levels", X) in write_names("rpc/adjust_stock", adjust)
    transfer = {"product_id": X, "from_location_id": Y, "to_location_id": Z, "quantity": 1}
    assert stock_scope("rpc/transfer_stock", transfer) == ((X,), ((X, Y), (X, Z)))
    assert stock_scope("rpc/transfer_stock", {**transfer, "to_location_id": "x"}) == ((X,), None)
    assert stock_scope("rpc/create_order", transfer) == (None, None)
    twice = adjust[:-1] + f', "location_id": "{Z}"}}'.encode()
    # Which location? Not known for certain: nothing about the write is (the whole table).
    assert write_names("rpc/adjust_stock", twice) >= {"stock_levels", "lots"}
    assert here not in write_names("rpc/adjust_stock", twice)
    payload = {"table": "stock_levels", "products": [X], "places": [[X.upper(), Y]]}
    assert here in names_of(orjson.dumps(payload).decode())
    payload["places"] = [[X]]  # malformed: the products are known, their places not
    assert "stock_levels#?" in names_of(orjson.dumps(payload).decode())


def test_refs_match_the_foreign_keys_of_the_schema() -> None:
    """REFS lists, for every public table, the public tables its foreign keys reference."""
    assert set(REFS) | {"organizations", "audit_log"} == set(TABLES)


# --- What the L1 counts (issue 13, point 5) -------------------------------------------------


def big_entry(i: int, size: int) -> tuple[tuple[str, ...], Entry]:
    """A key and an entry as large as the request limits allow (query, Prefer, Range-Unit)."""
    query = f"name=neq.{i:08d}" + "x" * size
    key = ("scope", "GET", "/rest/v1/test_items", query, "", "p" * size, "", "u" * size, "")
    headers = (
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Range", "0-0/*"),
        ("Content-Location", "/test_items?" + query),
    )
    return key, Entry.build((0, 1), 200, headers, b'[{"id":1}]', 60)


def test_l1_counts_keys_headers_and_what_it_renders() -> None:
    """The footprint covers the key's strings, the stored headers and the hit path's rendered
    head; measured with tracemalloc, what the L1 holds never exceeds what it counts."""
    from proxy.edge.hitpath import head_of, not_modified_head

    l1 = L1(max_bytes=1 << 40)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            key, entry = big_entry(i, 16_000 if i % 2 else 10)
            # the key's strings are created per request, as the server does
            key = tuple("".join(list(part)) for part in key)
            l1.put(key, entry)
            head_of(entry)
            not_modified_head(entry)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert l1.size >= held, (l1.size, held)
    small = L1(max_bytes=1 << 20)
    key, entry = big_entry(0, 16_000)
    small.put(key, entry)
    assert small.size >= 4 * 16_000  # query twice (key, Content-Location), Prefer, Range-Unit


# --- The miss path answers first (issue 13, point 4) ---------------------------------------


class StuckRedis:
    """A RedisGuard whose every command waits forever (Redis slower than the misses)."""

    async def run(self, call):
        await asyncio.Event().wait()


async def test_a_miss_is_stored_in_redis_after_answering_and_the_queue_is_bounded() -> None:
    """put() never waits for Redis; beyond max_stores waiting, stores are dropped and counted."""
    cache = ResponseCache(
        Generations(None, "t"),
        StuckRedis(),
        prefix="t",
        l1_bytes=1 << 24,
        max_entry_bytes=1 << 20,
        max_stores=10,
    )
    dropped = CACHE_STORES_DROPPED._value.get()
    for i in range(25):
        cache.put(("k", str(i)), Entry((0,), 200, (), b"[]", '"e"', time.time() + 60))
    assert len(cache.l1.entries) == 25  # served from L1 at once
    assert CACHE_STORES_DROPPED._value.get() - dropped == 25 - 10
    await cache.close()
