"""The three ways tests talk to /realtime/v1: supabase-py's async realtime client, the official
@supabase/realtime-js run by Node (client.mjs), and a bare Phoenix socket (for what the official
clients hide: a heartbeat round trip that proves nothing else was queued, malformed frames)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from realtime import AsyncRealtimeClient

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".local" / "node_modules"
CLIENT_JS = Path(__file__).with_name("client.mjs")
WAIT_S = 1.0  # every event is expected within this


@dataclass
class PyChannel:
    """A supabase-py channel and what it received."""

    client: AsyncRealtimeClient
    channel: object
    changes: asyncio.Queue = field(default_factory=asyncio.Queue)
    system: asyncio.Queue = field(default_factory=asyncio.Queue)
    states: asyncio.Queue = field(default_factory=asyncio.Queue)

    async def change(self, within_s: float = WAIT_S) -> dict:
        """The next postgres_changes payload's data."""
        async with asyncio.timeout(within_s):
            return (await self.changes.get())["data"]

    async def close(self) -> None:
        """Disconnect."""
        await self.client.close()


async def py_subscribe(
    url: str, apikey: str, token: str | None, topic: str, bindings: list[dict], **client_kw
) -> PyChannel:
    """supabase-py: connect with apikey, set_auth(token), join topic with bindings."""
    client = AsyncRealtimeClient(url + "/realtime/v1", token=apikey, **client_kw)
    if token is not None:
        await client.set_auth(token)
    channel = client.channel(topic)
    got = PyChannel(client, channel)
    for b in bindings:
        channel.on_postgres_changes(
            b.get("event", "*"),
            got.changes.put_nowait,
            table=b.get("table"),
            schema="public",
            filter=b.get("filter"),
        )
    channel.on_system(got.system.put_nowait)
    await channel.subscribe(lambda state, error: got.states.put_nowait((state.value, error)))
    state, error = await asyncio.wait_for(got.states.get(), 10)
    assert state == "SUBSCRIBED", (state, error)
    return got


@dataclass
class NodeClient:
    """client.mjs (@supabase/realtime-js) as a child process, its output lines as dicts."""

    process: asyncio.subprocess.Process

    async def next(self, key: str, within_s: float = WAIT_S) -> dict:
        """The next output line that has key (other lines are skipped)."""
        async with asyncio.timeout(within_s):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise EOFError("client.mjs ended")
                item = json.loads(line)
                if key in item:
                    return item[key]

    async def command(self, **command) -> None:
        """Send one command line ({"auth": token} or {"send": {...}})."""
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()

    async def close(self) -> None:
        """End the client (closing stdin makes it disconnect and exit)."""
        if self.process.returncode is None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@functools.cache
def node_flags() -> tuple[str, ...]:
    """Node 20 has WebSocket behind a flag (22 and later by default, where the flag may go)."""
    native = subprocess.run(
        ["node", "-e", "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)"], check=False
    )
    return (
        ("--no-warnings",)
        if native.returncode == 0
        else ("--experimental-websocket", "--no-warnings")
    )


async def node_subscribe(
    url: str, apikey: str, token: str, topic: str, bindings: list[dict]
) -> NodeClient:
    """@supabase/realtime-js: subscribe and wait for SUBSCRIBED."""
    process = await asyncio.create_subprocess_exec(
        "node",
        *node_flags(),
        str(CLIENT_JS),
        url,
        apikey,
        token,
        topic,
        json.dumps(bindings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "NIMBUS_NODE_MODULES": str(NODE_MODULES)},
    )
    client = NodeClient(process)
    status = await client.next("status", within_s=15)
    assert status == "SUBSCRIBED", status
    return client


@dataclass
class Raw:
    """A bare vsn 1.0.0 Phoenix socket."""

    ws: aiohttp.ClientWebSocketResponse
    ref: int = 0
    received: list[dict] = field(default_factory=list)

    async def push(self, topic: str, event: str, payload: dict) -> str:
        """Send a message; its ref."""
        self.ref += 1
        ref = str(self.ref)
        await self.ws.send_str(
            orjson.dumps(
                {"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": ref}
            ).decode()
        )
        return ref

    async def until_reply(self, ref: str, within_s: float = 5) -> dict:
        """Read until the phx_reply to ref (everything before it is kept in received)."""
        async with asyncio.timeout(within_s):
            while True:
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {frame.type} {frame.data!r}")
                message = orjson.loads(frame.data)
                if message["event"] == "phx_reply" and message["ref"] == ref:
                    return message["payload"]
                self.received.append(message)

    async def collect(self, event: str, count: int = 1, within_s: float = WAIT_S) -> list[dict]:
        """Read until count messages of event have arrived (kept in received); returns them."""
        async with asyncio.timeout(within_s):
            while True:
                found = [m for m in self.received if m["event"] == event]
                if len(found) >= count:
                    return found
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {frame.type} {frame.data!r}")
                self.received.append(orjson.loads(frame.data))

    async def join(self, topic: str, token: str | None, bindings: list[dict]) -> dict:
        """phx_join; the reply's payload."""
        payload = {"config": {"postgres_changes": bindings}}
        if token:
            payload["access_token"] = token
        return await self.until_reply(await self.push(topic, "phx_join", payload))

    async def flush(self, event: str = "postgres_changes") -> list[dict]:
        """A heartbeat round trip: every message queued before it has arrived; returns (and
        forgets) the messages of event received so far."""
        await self.until_reply(await self.push("phoenix", "heartbeat", {}))
        found = [m for m in self.received if m["event"] == event]
        self.received.clear()
        return found


async def raw_connect(session: aiohttp.ClientSession, url: str, apikey: str) -> Raw:
    """Open a bare socket."""
    ws = await session.ws_connect(
        url + "/realtime/v1/websocket", params={"apikey": apikey, "vsn": "1.0.0"}
    )
    return Raw(ws)
