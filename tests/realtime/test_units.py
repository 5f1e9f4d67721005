"""The pure parts, fast: binding and filter parsing and matching, Phoenix framing (both
versions, realtime-js's binary broadcast push), and the outbox's slow-client cut-off."""

from __future__ import annotations

import asyncio
import struct

import orjson
import pytest

from proxy.realtime import protocol
from proxy.realtime.bindings import BadBinding, compare, parse
from proxy.realtime.outbox import SLOW_CLOSE_CODE, Outbox

TABLES = {"stock_levels": {"location_id", "on_hand", "product_id"}}


@pytest.mark.parametrize(
    ("value", "operator", "values", "expected"),
    [
        ("x", "eq", ("x",), True),
        ("x", "neq", ("x",), False),
        (5, "gt", ("4.5",), True),
        (5, "lte", ("5",), True),
        (10, "lt", ("9",), False),  # numbers compare as numbers, not as text
        ("b", "in", ("a", "b"), True),
        (True, "eq", ("true",), True),
        (None, "neq", ("x",), False),  # null matches nothing, as in SQL
        (3, "eq", ("abc",), False),
    ],
)
def test_compare(value, operator, values, expected) -> None:
    """Filter comparisons follow SQL's reading of the row's value."""
    assert compare(value, operator, values) is expected


def test_parse_binding_and_match() -> None:
    """A filtered binding matches only its rows and events; its id is stable."""
    raw = {
        "event": "UPDATE",
        "schema": "public",
        "table": "stock_levels",
        "filter": "location_id=in.(L1,L2)",
    }
    binding = parse(raw, TABLES)
    assert binding.id == parse(dict(raw), TABLES).id
    assert binding.matches("UPDATE", {"location_id": "L2"})
    assert not binding.matches("INSERT", {"location_id": "L2"})
    assert not binding.matches("UPDATE", {"location_id": "L3"})
    assert binding.reply()["filter"] == "location_id=in.(L1,L2)"


@pytest.mark.parametrize(
    "raw",
    [
        {"event": "*", "schema": "public", "table": "nope"},
        {"event": "*", "schema": "auth", "table": "stock_levels"},
        {"event": "MERGE", "table": "stock_levels"},
        {"event": "*", "table": "stock_levels", "filter": "on_hand=like.1"},
        {"event": "*", "table": "stock_levels", "filter": "secret=eq.1"},
        {"event": "*", "table": "stock_levels", "filter": "on_hand"},
        {"event": "*", "filter": "on_hand=eq.1"},
        "not an object",
    ],
)
def test_parse_refuses(raw) -> None:
    """What cannot be served is refused with a reason, never ignored."""
    with pytest.raises(BadBinding):
        parse(raw, TABLES)


def test_framing_both_versions() -> None:
    """vsn 1.0.0 objects and vsn 2.0.0 arrays, decoded and encoded."""
    one = protocol.decode('{"topic":"t","event":"e","payload":{},"ref":"1"}', protocol.VSN1)
    two = protocol.decode('["1","2","t","e",{"a":1}]', protocol.VSN2)
    assert (one.ref, one.join_ref, two.join_ref, two.payload) == ("1", None, "1", {"a": 1})
    assert orjson.loads(protocol.encode(protocol.VSN2, "1", None, "t", "e", b"{}")) == [
        "1",
        None,
        "t",
        "e",
        {},
    ]
    assert orjson.loads(protocol.encode(protocol.VSN1, None, "3", "t", "e", b"{}"))["ref"] == "3"
    for bad in ('["t"]', "[", '{"topic":1,"event":"e","payload":{}}'):
        with pytest.raises(protocol.BadMessage):
            protocol.decode(bad, protocol.VSN2 if bad.startswith("[") else protocol.VSN1)


def test_binary_broadcast_push() -> None:
    """realtime-js's binary broadcast push becomes a broadcast message."""
    fields = [b"1", b"2", b"realtime:room", b"shout", b""]
    frame = struct.pack("!7B", 3, *(len(f) for f in fields), 1) + b"".join(fields) + b'{"n":1}'
    message = protocol.decode(frame, protocol.VSN2)
    assert (message.topic, message.event, message.ref) == ("realtime:room", "broadcast", "2")
    assert message.payload == {"type": "broadcast", "event": "shout", "payload": {"n": 1}}
    with pytest.raises(protocol.BadMessage):
        protocol.decode(b"\x09\x00", protocol.VSN2)


class StuckSocket:
    """A client that never reads: every send waits forever; close is recorded."""

    def __init__(self) -> None:
        self.closed: tuple[int, bytes] | None = None

    async def send_str(self, _data: str) -> None:
        await asyncio.Event().wait()

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed = (code, message)


async def test_outbox_closes_a_slow_client() -> None:
    """Past its limit the outbox stops queueing and closes with 1013 and a reason."""
    ws = StuckSocket()
    outbox = Outbox(ws, limit=3)
    task = asyncio.create_task(outbox.run())
    outbox.push("first")  # taken by the writer, which then waits forever
    await asyncio.sleep(0)
    for n in range(5):
        outbox.push(f"m{n}")
    assert outbox.slow
    for _ in range(3):
        await asyncio.sleep(0)
    # The writer is stuck in send_str: the socket must still be closed without it.
    assert ws.closed is not None and ws.closed[0] == SLOW_CLOSE_CODE
    assert b"too slow" in ws.closed[1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_routes_narrow_to_the_channels_a_row_concerns() -> None:
    """eq-filtered channels are found by the row's value (text or number); unfiltered and other
    filters always are; removed channels never."""
    from proxy.realtime.routes import Routes

    class Subscriber:
        def __init__(self, *raws) -> None:
            self.bindings = tuple(parse(r, TABLES) for r in raws)

    channel = Subscriber

    base = {"event": "*", "table": "stock_levels"}
    by_location = channel({**base, "filter": "location_id=eq.L1"})
    by_amount = channel({**base, "filter": "on_hand=eq.5"})
    wide = channel(base, {**base, "filter": "on_hand=gt.1"})
    everything = channel({"event": "*"})
    routes = Routes()
    for c in (by_location, by_amount, wide, everything):
        routes.add(c)
    assert routes.candidates("stock_levels", {"location_id": "L1", "on_hand": 5.0}) == {
        by_location,
        by_amount,
        wide,
        everything,
    }
    assert routes.candidates("stock_levels", {"location_id": "L2", "on_hand": 4}) == {
        wide,
        everything,
    }
    routes.remove(by_location)
    routes.remove(by_location)
    assert by_location not in routes.candidates("stock_levels", {"location_id": "L1"})
    assert routes.eq["stock_levels"].keys() == {"on_hand"}


@pytest.mark.parametrize(
    "subject",
    [
        "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  # Python's uuid takes it, PostgreSQL not
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",  # would be read back lower case: never matched
        "user_2abc",  # a third-party issuer's subject
    ],
)
async def test_a_subject_that_is_not_a_canonical_uuid_has_no_organizations(subject) -> None:
    """Roles are read only for subjects PostgreSQL prints as uuids; any other subject has none,
    without a query (the database here is unreachable: a query would raise, and the join be
    refused as 'Database unavailable')."""
    from proxy.realtime.source import Feed

    feed = Feed("postgresql://nobody@127.0.0.1:1/none", 60)
    try:
        assert await feed.roles_of(subject) == {}
    finally:
        await feed.db.close()


async def test_the_feed_queues_changes_only_while_a_channel_is_open() -> None:
    """A row change arriving while no channel is open is dropped at once (nobody could want
    it); with one open it is queued for delivery. A membership statement is queued either way
    (its epoch guards a join in progress); another table's statement is not."""
    from proxy.realtime.source import Feed

    feed = Feed("postgresql://nobody@127.0.0.1:1/none", 60)
    try:
        change = '{"table": "products", "type": "UPDATE", "new": {}, "old": {}, "ts": 0}'
        feed.on_change(change)
        feed.on_members('{"table": "stock_levels", "op": "update"}')
        assert list(feed._items) == []
        feed.on_members('{"table": "memberships", "op": "delete"}')
        assert [kind for kind, _ in feed._items] == ["members"]
        feed.hub.channels.add(object())  # type: ignore[arg-type]
        feed.on_change(change)
        assert [kind for kind, _ in feed._items] == ["members", "change"]
    finally:
        await feed.db.close()
