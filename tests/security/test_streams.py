"""Live streams (/api/v1/notifications/stream) cannot be hoarded or outlive their right to exist:
caps per user and per organization shared by two proxy processes through Redis, a member removed
from an organization or a revoked session loses the stream within 1 s, and Last-Event-ID is
ASCII digits or a 400 (issue 13, point 5)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import httpx
import orjson
import psycopg
import pytest

from proxy.gate.tokens import mint
from tests.support.domain import World, build_world
from tests.support.process import start_proxies
from tests.support.redis_server import SHARED_REDIS, own_prefix
from tests.support.wait import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")
STREAM = "/api/v1/notifications/stream"
PER_USER = 2
PER_ORG = 4


@dataclass
class Sse:
    """An open stream: the frames it received (`event: end` ones included) as they arrive."""

    response: aiohttp.ClientResponse
    frames: asyncio.Queue = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None

    async def read(self) -> None:
        """Parse frames until the server ends the response."""
        fields: dict[str, str] = {}
        async for raw in self.response.content:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if "data" in fields:
                    data = orjson.loads(fields["data"])
                    self.frames.put_nowait((fields.get("event", "message"), data))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    async def ended(self, within_s: float) -> dict:
        """The `end` frame's data, and the response closed, within within_s seconds."""
        async with asyncio.timeout(within_s):
            while True:
                event, data = await self.frames.get()
                if event == "end":
                    await self.task
                    return data

    async def close(self) -> None:
        """Disconnect."""
        self.response.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture(scope="module")
def stream_world(database_url: str) -> World:
    """Organizations of this module's own (their stream slots are filled here)."""
    return build_world(database_url)


@pytest.fixture(scope="module")
def streams_proxies(postgrest, database_url: str, jwt_secret: str, tmp_path_factory):
    """Two proxy processes sharing Redis, caps of 2 per user and 4 per organization, the default
    heartbeat (15 s: nothing here may rely on a heartbeat to notice anything)."""
    with own_prefix("sse") as prefix:
        procs = start_proxies(
            tmp_path_factory,
            "sse",
            2,
            NIMBUS_POSTGREST_URL=postgrest.url,
            NIMBUS_DATABASE_URL=database_url,
            NIMBUS_JWT_SECRET=jwt_secret,
            NIMBUS_REDIS_URL=SHARED_REDIS,
            NIMBUS_REDIS_PREFIX=prefix,
            NIMBUS_CACHE_ENABLED="false",
            NIMBUS_SSE_MAX_PER_USER=str(PER_USER),
            NIMBUS_SSE_MAX_PER_ORGANIZATION=str(PER_ORG),
        )
        urls = [p.url for p in procs]
        for url in urls:
            wait_until(lambda u=url: httpx.get(u + "/ready").status_code == 200, what="ready")
        yield urls
        for proc in procs:
            proc.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client without a connection limit."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        yield client


@pytest.fixture
def member(database_url: str, stream_world: World) -> Iterator[str]:
    """A new viewer of organization a (removed or not by the test; deleted afterwards)."""
    uid = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, f"{uid}@t.test"))
        conn.execute(
            "insert into public.memberships (user_id, organization_id, role)"
            " values (%s, %s, 'viewer')",
            (uid, stream_world.a.id),
        )
    yield uid
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", (uid,))


async def open_stream(
    session: aiohttp.ClientSession, url: str, token: str, **headers: str
) -> tuple[int, Sse | dict]:
    """(200, the open stream once its first line arrived) or (status, the JSON error)."""
    response = await session.get(
        url + STREAM, headers={"Authorization": "Bearer " + token, **headers}
    )
    if response.status != 200:
        body = await response.json()
        response.release()
        return response.status, body
    sse = Sse(response)
    async with asyncio.timeout(10):
        await response.content.readline()  # `retry: ...`: the stream is registered
    sse.task = asyncio.create_task(sse.read())
    return 200, sse


def user_token(secret: str, uid: str, ttl: int = 3600) -> str:
    """A token of uid (with its own session_id)."""
    return mint(secret, sub=uid, ttl=ttl)


async def test_stream_caps_per_user(streams_proxies, session, stream_world, jwt_secret):
    """One account may hold NIMBUS_SSE_MAX_PER_USER streams across both processes (429
    too_many_streams beyond), and holding them locks nobody else out; closing one frees it."""
    hog = user_token(jwt_secret, stream_world.a.users["staff"])
    held = []
    for n in range(PER_USER):
        status, sse = await open_stream(session, streams_proxies[n % 2], hog)
        assert status == 200, sse
        held.append(sse)
    for url in streams_proxies:  # the count is shared: neither process has room for a third
        status, body = await open_stream(session, url, hog)
        assert status == 429, body
        assert body["error"]["code"] == "too_many_streams"
    other = user_token(jwt_secret, stream_world.a.users["viewer"])
    status, sse = await open_stream(session, streams_proxies[0], other)
    assert status == 200, sse
    await sse.close()
    await held.pop().close()
    # The slot comes back once the server has seen the disconnect (no heartbeat needed).
    deadline = time.monotonic() + 3
    while True:
        status, sse = await open_stream(session, streams_proxies[1], hog)
        if status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status == 200, sse
    held.append(sse)
    for sse in held:
        await sse.close()


async def test_stream_caps_per_organization(streams_proxies, session, stream_world, jwt_secret):
    """An organization holds at most NIMBUS_SSE_MAX_PER_ORGANIZATION streams in all; another
    organization's members still connect."""
    a = stream_world.a.users
    held = []
    for n, role in enumerate(("owner", "owner", "admin", "admin")):
        status, sse = await open_stream(
            session, streams_proxies[n % 2], user_token(jwt_secret, a[role])
        )
        assert status == 200, sse
        held.append(sse)
    status, body = await open_stream(
        session, streams_proxies[0], user_token(jwt_secret, a["manager"])
    )
    assert status == 429, body
    assert body["error"]["code"] == "too_many_streams"
    b_token = user_token(jwt_secret, stream_world.b.users["viewer"])
    status, sse = await open_stream(session, streams_proxies[1], b_token)
    assert status == 200, sse
    held.append(sse)
    for sse in held:
        await sse.close()


async def test_removed_member_stream_ends_within_1s(
    streams_proxies, session, member, database_url, jwt_secret
):
    """Deleting a member's membership (plain SQL, as an admin would) ends that member's open
    streams on every process within 1 s, with `event: end` naming why."""
    token = user_token(jwt_secret, member)
    streams = []
    for url in streams_proxies:
        status, sse = await open_stream(session, url, token)
        assert status == 200, sse
        streams.append(sse)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("delete from public.memberships where user_id = %s", (member,))
    committed = time.monotonic()
    for sse in streams:
        assert await sse.ended(within_s=1.0) == {"reason": "membership_changed"}
        await sse.close()
    print(f"\nremoved member: both streams ended {time.monotonic() - committed:.3f}s after commit")


async def test_revoked_session_stream_ends_within_1s(streams_proxies, session, member, jwt_secret):
    """A logout on one process ends the session's stream on the other within 1 s."""
    token = user_token(jwt_secret, member)
    status, sse = await open_stream(session, streams_proxies[1], token)
    assert status == 200, sse
    async with session.post(
        streams_proxies[0] + "/api/v1/auth/logout", headers={"Authorization": "Bearer " + token}
    ) as answer:
        assert answer.status == 200, await answer.text()
    answered = time.monotonic()
    assert await sse.ended(within_s=1.0) == {"reason": "revoked"}
    print(f"\nrevoked session: stream ended {time.monotonic() - answered:.3f}s after logout")
    await sse.close()


@pytest.mark.parametrize("value", ["²", "١٢", "1²", "٣", "x", "-1", "+5", "0x10"])
async def test_last_event_id_non_ascii_digit_is_400(
    streams_proxies, session, member, jwt_secret, value
):
    """Last-Event-ID that is not ASCII digits (superscripts and other scripts' digits, which
    str.isdigit accepts, included) is a 400 in the API's shape, never a 500."""
    token = user_token(jwt_secret, member)
    async with session.get(
        streams_proxies[0] + STREAM,
        headers={"Authorization": "Bearer " + token, "Last-Event-ID": value},
    ) as answer:
        assert answer.status == 400, await answer.text()
        body = await answer.json()
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["request_id"]
