"""What makes two requests the same cache entry, what an entry costs, what it depends on."""

from __future__ import annotations

import time

from proxy.cache import ENTRY_OVERHEAD, L1, Entry
from proxy.dependencies import ALL, read_dependencies, write_targets


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
    assert {"products", "stock_levels", "memberships"} <= deps
    assert read_dependencies("rpc/lookup_product", "id,nope(x)") == frozenset({ALL})
    quoted = read_dependencies("products", 'id,"stock_levels"(on_hand)')
    assert "stock_levels" in quoted


def test_cascading_writes_invalidate_everything() -> None:
    """Deleting an organization or an order cascades: such writes bump every table."""
    assert write_targets("organizations") == frozenset({ALL})
    assert write_targets("orders") == frozenset({ALL})
