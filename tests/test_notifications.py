"""Live notifications end to end: a real `nimbus serve`, events written by plain SQL, SSE clients.

Pins: a client only receives its own organizations' events, in order; a reconnect with
Last-Event-ID replays exactly what was missed, with no duplicate or gap at the switch to live;
500 streams on one process stay within a stated memory bound; history and mark-read."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import httpx
import orjson
import psycopg
import pytest

from proxy.gate.tokens import mint
from tests.support.cached import behind_lossy_relay
from tests.support.domain import World, build_world, call, items
from tests.support.process import start_proxy

# The async fixtures run on the session's loop (asyncio_default_fixture_loop_scope); so do these.
pytestmark = pytest.mark.asyncio(loop_scope="session")
MEMORY_BOUND_MB = 60  # RSS growth allowed for 500 open streams on one process
STREAMS = 500
NOTIFY = """
with n as (
  insert into public.notifications (organization_id, kind, payload)
  values (%s, 'low_stock', %s) returning id, organization_id, kind, payload
)
select n.id, pg_notify('nimbus_events', jsonb_build_object(
  'id', n.id, 'organization_id', n.organization_id, 'kind', n.kind, 'payload', n.payload)::text)
from n
"""


@dataclass
class Frame:
    """One SSE event as the client parsed it."""

    id: int | None
    event: str
    data: dict


@dataclass
class Sse:
    """An open stream and what it has received so far."""

    response: aiohttp.ClientResponse
    frames: asyncio.Queue = field(default_factory=asyncio.Queue)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    comments: list[str] = field(default_factory=list)
    task: asyncio.Task | None = None

    async def read(self) -> None:
        """Parse the stream into frames until it ends."""
        fields: dict[str, str] = {}
        async for raw in self.response.content:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if "data" in fields:
                    event_id = fields.get("id")
                    self.frames.put_nowait(
                        Frame(
                            int(event_id) if event_id else None,
                            fields.get("event", "message"),
                            orjson.loads(fields["data"]),
                        )
                    )
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line)
                self.connected.set()
            else:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    async def take(self, count: int, within_s: float = 15) -> list[Frame]:
        """The next count frames (fails after within_s seconds)."""
        async with asyncio.timeout(within_s):
            return [await self.frames.get() for _ in range(count)]

    async def close(self) -> None:
        """Disconnect."""
        self.response.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def subscribe(
    session: aiohttp.ClientSession, url: str, token: str, last_id: int | None = None
) -> Sse:
    """Open /api/v1/notifications/stream and wait for its first line."""
    headers = {"Authorization": "Bearer " + token}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    response = await session.get(url + "/api/v1/notifications/stream", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    sse = Sse(response)
    sse.task = asyncio.create_task(sse.read())
    async with asyncio.timeout(30):
        await sse.connected.wait()
    return sse


def emit(database_url: str, org: str, count: int = 1, **payload) -> list[int]:
    """Insert count notifications for org as the superuser and NOTIFY each, one per commit."""
    ids = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n in range(count):
            body = orjson.dumps({"n": n, **payload}).decode()
            ids.append(conn.execute(NOTIFY, (org, body)).fetchone()[0])
    return ids


def rss_kb(pid: int) -> int:
    """The resident set size of pid, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1])


@pytest.fixture(scope="module")
def world(database_url: str) -> World:
    """Organizations a and b with users (the shared test world, built for this module)."""
    return build_world(database_url)


@pytest.fixture(scope="module")
def events_proxy(postgrest, database_url: str, jwt_secret: str, tmp_path_factory):
    """A `nimbus serve` of its own (its PID is measured), heartbeats every second."""
    proc, url = start_proxy(
        tmp_path_factory.mktemp("events-proxy"),
        NIMBUS_POSTGREST_URL=postgrest.url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_SSE_HEARTBEAT_S="1",
        NIMBUS_CACHE_ENABLED="false",
        # 500 streams of two users below: the per-user and per-organization caps (tested in
        # tests/security/test_streams.py) must not get in the way here.
        NIMBUS_SSE_MAX_PER_USER="1000",
        NIMBUS_SSE_MAX_PER_ORGANIZATION="1000",
    )
    yield proc, url
    proc.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client without a connection limit (hundreds of streams at once)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        yield client


def token(jwt_secret: str, world: World, org: str, role: str = "viewer", ttl: int = 3600) -> str:
    """A token of the world's user with role in org a or b."""
    return mint(jwt_secret, sub=getattr(world, org).users[role], ttl=ttl)


async def test_events_reach_only_their_organization_in_order(
    events_proxy, session, world, database_url, jwt_secret
):
    """Two users of different organizations: each gets exactly its organization's events, in
    id order, including one made by an order status change through the SQL functions."""
    _, url = events_proxy
    a = await subscribe(session, url, token(jwt_secret, world, "a"))
    b = await subscribe(session, url, token(jwt_secret, world, "b"))
    expected_a = emit(database_url, world.a.id, 2)
    expected_b = emit(database_url, world.b.id, 3)
    with psycopg.connect(database_url) as conn:
        staff = world.a.users["staff"]
        order = call(
            conn,
            staff,
            "select public.create_order('sales', %s, %s)",
            (world.a.locations["WH1"], items((world.a.products["P1"], 1))),
        )[0][0]
        call(conn, staff, "select public.update_order_status(%s, 'fulfilled')", (order["id"],))
        status_ids = [
            row[0]
            for row in conn.execute(
                "select id from public.notifications where kind = 'order_status'"
                " and payload->>'order_id' = %s order by id",
                (order["id"],),
            )
        ]
    assert status_ids
    expected_a += status_ids + emit(database_url, world.a.id, 2)
    expected_b += emit(database_url, world.b.id, 1)
    got_a = await a.take(len(expected_a))
    got_b = await b.take(len(expected_b))
    assert [f.id for f in got_a] == expected_a
    assert [f.id for f in got_b] == expected_b
    assert {f.data["organization_id"] for f in got_a} == {world.a.id}
    assert {f.data["organization_id"] for f in got_b} == {world.b.id}
    assert got_a[-3].data["kind"] == "order_status"
    # Nothing else arrives: a marker in each organization is the very next frame.
    marker_a, marker_b = emit(database_url, world.a.id)[0], emit(database_url, world.b.id)[0]
    assert [f.id for f in await a.take(1)] == [marker_a]
    assert [f.id for f in await b.take(1)] == [marker_b]
    await a.close()
    await b.close()


async def test_reconnect_with_last_event_id_replays_exactly_the_missed(
    events_proxy, session, world, database_url, jwt_secret
):
    """Disconnect, more events, reconnect with Last-Event-ID (header, then query): exactly the
    missed ones, in order, then live ones without a duplicate."""
    _, url = events_proxy
    user = token(jwt_secret, world, "a")
    first = await subscribe(session, url, user)
    seen = emit(database_url, world.a.id, 3)
    assert [f.id for f in await first.take(3)] == seen
    await first.close()
    missed = emit(database_url, world.a.id, 4)
    emit(database_url, world.b.id, 2)
    second = await subscribe(session, url, user, last_id=seen[-1])
    assert [f.id for f in await second.take(4)] == missed
    live = emit(database_url, world.a.id)
    assert [f.id for f in await second.take(1)] == live
    await second.close()
    more = emit(database_url, world.a.id, 2)
    response = await session.get(
        url + f"/api/v1/notifications/stream?last_event_id={live[0]}",
        headers={"Authorization": "Bearer " + user},
    )
    third = Sse(response)
    third.task = asyncio.create_task(third.read())
    assert [f.id for f in await third.take(2)] == more
    await third.close()


async def test_no_gap_or_duplicate_when_reconnecting_during_a_burst(
    events_proxy, session, world, database_url, jwt_secret
):
    """Events keep arriving while a client reconnects and replays: the second connection
    delivers every event after its Last-Event-ID exactly once, in order."""
    _, url = events_proxy
    user = token(jwt_secret, world, "a")
    first = await subscribe(session, url, user)
    start = emit(database_url, world.a.id)[0]
    assert [f.id for f in await first.take(1)] == [start]
    await first.close()
    produced: list[int] = []

    def burst() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for n in range(60):
                produced.append(conn.execute(NOTIFY, (world.a.id, f'{{"n": {n}}}')).fetchone()[0])
                time.sleep(0.005)

    writer = threading.Thread(target=burst)
    writer.start()
    await asyncio.sleep(0.1)  # part of the burst happens before the reconnect
    second = await subscribe(session, url, user, last_id=start)
    await asyncio.to_thread(writer.join)
    got = [f.id for f in await second.take(len(produced))]
    assert got == produced
    tail = emit(database_url, world.a.id)
    assert [f.id for f in await second.take(1)] == tail  # nothing extra was queued
    await second.close()


async def test_stream_refuses_bad_requests(events_proxy, session, world, jwt_secret):
    """No token: 401 JSON; a Last-Event-ID that is not an id: 400."""
    _, url = events_proxy
    async with session.get(url + "/api/v1/notifications/stream") as response:
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "invalid_token"
    headers = {"Authorization": "Bearer " + token(jwt_secret, world, "a"), "Last-Event-ID": "x"}
    async with session.get(url + "/api/v1/notifications/stream", headers=headers) as response:
        assert response.status == 400


async def test_token_expiry_ends_the_stream(events_proxy, session, world, jwt_secret):
    """Heartbeat comments keep an idle stream alive; it ends with `event: end`
    (token_expired) when the caller's token expires."""
    _, url = events_proxy
    sse = await subscribe(session, url, token(jwt_secret, world, "a", ttl=3))
    (frame,) = await sse.take(1, within_s=10)
    assert (frame.event, frame.data) == ("end", {"reason": "token_expired"})
    async with asyncio.timeout(5):
        await sse.task  # the server closed the response
    assert ": heartbeat" in sse.comments  # every second (NIMBUS_SSE_HEARTBEAT_S=1) until then


async def test_history_unread_filter_and_mark_read(events_proxy, world, database_url, jwt_secret):
    """History lists the caller's organization's notifications newest first; marking ids (or
    all) read changes `unread=true`; another organization's ids are never marked."""
    _, url = events_proxy
    ids = emit(database_url, world.a.id, 3, source="history")
    headers = {"Authorization": "Bearer " + token(jwt_secret, world, "a", role="manager")}
    async with httpx.AsyncClient(base_url=url + "/api/v1", headers=headers, timeout=30) as api:

        async def rows(query: str = "") -> list[dict]:
            answer = await api.get("/notifications?limit=100" + query)
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]

        async def mark(body: dict) -> int:
            answer = await api.post("/notifications/read", json=body)
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]["marked"]

        listed = await rows()
        assert len(listed) >= 3
        assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), reverse=True)
        assert {r["organization_id"] for r in listed} == {world.a.id}
        assert set(ids) <= {r["id"] for r in await rows("&unread=true")}
        assert await mark({"ids": ids[:2]}) == 2
        assert await mark({"ids": ids[:2]}) == 0  # already read
        by_id = {r["id"]: r for r in await rows()}
        assert by_id[ids[0]]["read_at"] is not None and by_id[ids[2]]["read_at"] is None
        unread = {r["id"] for r in await rows("&unread=true")}
        assert ids[2] in unread and not unread & set(ids[:2])
        other = emit(database_url, world.b.id)
        assert await mark({"ids": other}) == 0  # another organization's: invisible
        assert await mark({"all": True}) >= 1
        unread_page = (await api.get("/notifications?unread=true")).json()
        assert unread_page["pagination"]["total"] == 0
        assert (await api.post("/notifications/read", json={})).status_code == 422
        assert (await api.get("/notifications?unread=maybe")).status_code == 422
    with psycopg.connect(database_url) as conn:
        assert not conn.execute(
            "select 1 from public.notification_reads where notification_id = %s", (other[0],)
        ).fetchall()


async def test_a_mark_read_whose_answer_was_lost_still_moves_the_cached_list(
    postgrest, database_url, jwt_secret, world, tmp_path
):
    """PostgREST marks the notifications read, but its answer never reaches the proxy (the
    connection drops): the client gets a 503 (outcome unknown), and the cached unread list must
    not show them unread after it. The proxy does not LISTEN here, so only its own bump can
    move the list: a write whose outcome was never learnt is bumped like one that succeeded."""
    with behind_lossy_relay(
        tmp_path,
        postgrest,
        database_url,
        jwt_secret,
        b"POST /notification_reads",
        NIMBUS_LISTEN_ENABLED="false",
    ) as (url, relay):
        ids = emit(database_url, world.a.id, 2, source="lost-answer")
        headers = {"Authorization": "Bearer " + token(jwt_secret, world, "a", role="manager")}
        unread = "/notifications?unread=true&limit=100"
        async with httpx.AsyncClient(base_url=url + "/api/v1", headers=headers, timeout=30) as api:
            listed = await api.get(unread)
            assert set(ids) <= {row["id"] for row in listed.json()["data"]}
            assert (await api.get(unread)).headers["x-cache"] == "HIT"
            lost = await api.post("/notifications/read", json={"ids": ids[:1]})
            assert lost.status_code == 503, lost.text
            assert relay.dropped == 1
            after = await api.get(unread)
        with psycopg.connect(database_url) as conn:
            marked = conn.execute(
                "select count(*) from public.notification_reads where notification_id = %s",
                (ids[0],),
            ).fetchone()[0]
        assert marked == 1  # PostgREST did mark it: only the answer was lost
        left = {row["id"] for row in after.json()["data"]}
        assert ids[0] not in left and ids[1] in left, after.headers.get("x-cache")


@pytest.mark.timeout(180)
async def test_500_subscribers_within_memory_bound(
    events_proxy, session, world, database_url, jwt_secret
):
    """500 concurrent streams on one process: RSS grows by less than MEMORY_BOUND_MB, and one
    event per organization reaches exactly its 250 subscribers."""
    proc, url = events_proxy
    tokens = {org: token(jwt_secret, world, org) for org in ("a", "b")}
    warm = await subscribe(session, url, tokens["a"])  # first-stream costs (imports, buffers)
    await warm.close()
    await asyncio.sleep(0.5)
    before = rss_kb(proc.process.pid)
    started = time.monotonic()
    streams = await asyncio.gather(
        *(subscribe(session, url, tokens["ab"[n % 2]]) for n in range(STREAMS))
    )
    connect_s = time.monotonic() - started
    ids = {"a": emit(database_url, world.a.id)[0], "b": emit(database_url, world.b.id)[0]}
    got = await asyncio.gather(*(s.take(1, within_s=60) for s in streams))
    after = rss_kb(proc.process.pid)
    growth_mb = (after - before) / 1024
    print(
        f"\n{STREAMS} streams: RSS {before / 1024:.1f} -> {after / 1024:.1f} MB "
        f"(+{growth_mb:.1f} MB, {(after - before) / STREAMS:.1f} KB/stream), "
        f"connected in {connect_s:.1f}s"
    )
    for n, frames in enumerate(got):
        assert [f.id for f in frames] == [ids["ab"[n % 2]]]
    assert growth_mb < MEMORY_BOUND_MB
    await asyncio.gather(*(s.close() for s in streams))
