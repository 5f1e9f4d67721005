"""The pub/sub subscription (proxy/cache/pubsub.py, redis-py's PubSub) in one event loop, on real
Redis servers: a bump returns only once every peer has applied it (what read-your-writes across
processes rests on, whichever loop turn a peer reads it in); a lost subscription makes the cache
incoherent until a fresh one has resynced; TLS URLs, of one Redis or of a cluster, work like
plain ones."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
import redis

from proxy.cache.generations import EPOCH, Generations
from proxy.cache.listener import Coalescer
from proxy.cache.pubsub import Subscriber
from proxy.local.localstack import free_port
from proxy.ops.redisconn import (
    ClusterBus,
    RedisGuard,
    is_cluster,
    make_client,
    make_cluster_client,
)
from tests.support.redis_server import SHARED_REDIS, RedisServer, own_prefix


async def eventually(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    """Return as soon as condition() holds (polled with a deadline: a reconnect has no event)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def subscribed(url: str, prefix: str) -> AsyncIterator[Generations]:
    """A process's generations on url, subscribed as coherence.redis_context subscribes them."""
    guard = RedisGuard(make_client(url, 1.0), failures=3, cooldown_s=0.1)
    gens = Generations(guard, prefix, ack_timeout_s=5.0)  # a timeout shows as a warning
    bus = None
    if is_cluster(url):
        bus = gens.bus = RedisGuard(ClusterBus(make_cluster_client(url, 1.0), gens.channel))
    gens.pubsub_up = False
    subscriber = Subscriber(
        url, [gens.channel, gens.ack_channel], gens.on_message, gens.set_pubsub, timeout_s=1.0
    )
    gens.resubscribe = subscriber.kick
    task = asyncio.create_task(subscriber.run())
    try:
        await eventually(lambda: gens.coherent, "the subscription")
        yield gens
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await guard.close()
        if bus is not None:
            await bus.close()


async def test_a_bump_returns_once_every_peer_has_applied_it(caplog) -> None:
    """200 bumps each way between two subscribers: when bump() returns, the peer's generation
    has already moved (it acknowledges after applying), and no acknowledgement timed out."""
    with own_prefix("pubsub") as prefix:
        async with subscribed(SHARED_REDIS, prefix) as a, subscribed(SHARED_REDIS, prefix) as b:
            with caplog.at_level(logging.WARNING, logger="proxy.cache.generations"):
                for i in range(200):
                    writer, reader = (a, b) if i % 2 else (b, a)
                    await writer.bump(["products"])
                    assert reader.gens["products"] == writer.gens["products"]
                    assert reader.vector(("products",)) == writer.vector(("products",))
            assert not [r for r in caplog.records if "acknowledge" in r.getMessage()]


async def test_a_bump_is_one_round_trip(tmp_path: Path) -> None:
    """A bump increments all its names and announces them with one script: one Redis round
    trip, the peer's acknowledgement aside. On a server that refuses scripts (EVAL renamed away
    here, as some managed Redis do) it falls back, once, to a pipeline and a publish, staying
    coherent: the counters in Redis, in the process and in its peer are the same either way."""
    for refused in (False, True):
        server = RedisServer(tmp_path / str(refused))
        (tmp_path / str(refused)).mkdir()
        server.start(*(["--rename-command", "EVAL", ""] if refused else []))
        try:
            with own_prefix("incr") as prefix:
                async with (
                    subscribed(server.url, prefix) as gens,
                    subscribed(server.url, prefix) as peer,
                ):
                    rounds = 0
                    run = gens.guard.run

                    async def counted(call, run=run):  # type: ignore[no-untyped-def]
                        nonlocal rounds
                        rounds += 1
                        return await run(call)

                    gens.guard.run = counted  # type: ignore[method-assign]
                    await gens.bump(["a", "b"])
                    first = rounds
                    await gens.bump(["b", "c"])
                    assert gens.scripted is not refused
                    # Refused (found out at the subscription's first bump): a pipeline, a publish.
                    assert (first, rounds - first) == ((2, 2) if refused else (1, 1))
                    assert gens.coherent and peer.coherent
                    stored = await run(lambda r: r.hgetall(gens.key))
                    counters = {k.decode(): int(v) for k, v in stored.items()}
                    assert {k: counters[k] for k in "abc"} == {"a": 1, "b": 2, "c": 1}
                    assert {k: gens.gens[k] for k in "abc"} == {"a": 1, "b": 2, "c": 1}
                    # bump() waited for the peer's acknowledgement: it has applied both.
                    assert {k: peer.gens[k] for k in "abc"} == {"a": 1, "b": 2, "c": 1}
        finally:
            server.stop()


def published(watcher: redis.client.PubSub, channel: str) -> list[dict]:
    """The bumps published on channel so far, as a pattern subscriber heard them (NUMSUB does
    not count pattern subscribers): read up to a marker published now, which Redis delivers
    after everything published before it."""
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        client.publish(channel, b'{"marker": true}')
    finally:
        client.close()
    heard = []
    while True:
        message = watcher.get_message(timeout=5)
        assert message is not None, "the marker never arrived"
        if message["type"] != "pmessage":
            continue
        data = orjson.loads(message["data"])
        if data.get("marker"):
            return heard
        heard.append(data)


async def test_a_process_alone_does_not_read_its_bumps_back() -> None:
    """Where every subscriber of the events channel is the bumping process itself, the script
    records the bump without announcing it (the process applies the values it answers); once a
    peer subscribes, it hears every bump again (and the bumper waits for its acknowledgement)."""
    with own_prefix("alone") as prefix:
        client = redis.Redis.from_url(SHARED_REDIS)
        watcher = client.pubsub()
        try:
            watcher.psubscribe(prefix + ":event[s]")
            async with subscribed(SHARED_REDIS, prefix) as a:
                await a.bump(["x"])
                assert published(watcher, a.channel) == []
                assert a.gens["x"] == 1 and a.vector(("x",))[1] == 1
                async with subscribed(SHARED_REDIS, prefix) as b:
                    assert b.gens["x"] == 1  # read when it subscribed
                    await a.bump(["x"])
                    assert b.gens["x"] == a.gens["x"] == 2
                    heard = published(watcher, a.channel)  # b's epoch bump as it came up, a's
                    assert [m["g"]["x"] for m in heard if "x" in m["g"]] == ["2"]
        finally:
            watcher.close()
            client.close()


async def test_a_server_denying_the_scripts_commands_gets_pipelined_bumps(tmp_path: Path) -> None:
    """An ACL that lets a client EVAL and PUBLISH but not PUBSUB (which the bump script asks who
    listens) makes bumps fall back to the pipeline, once, staying coherent — not fail each
    time (found by a cold review)."""
    server = RedisServer(tmp_path)
    server.start("--user", "default", "on", "nopass", "~*", "&*", "+@all", "-pubsub")
    try:
        with own_prefix("acl") as prefix:
            async with (
                subscribed(server.url, prefix) as gens,
                subscribed(server.url, prefix) as peer,
            ):
                await gens.bump(["a"])
                await gens.bump(["a"])
                assert not gens.scripted
                assert gens.coherent and peer.coherent
                assert gens.gens["a"] == peer.gens["a"] == 2
    finally:
        server.stop()


async def test_a_script_failing_part_way_fails_that_bump_only() -> None:
    """A bump script the server runs and that fails (here: the counters' key is not a hash, as
    after a stray write; out of memory acts alike) is that bump's failure: the cache stops
    being trusted until a fresh subscription has resynced, and the next bump is a script
    again (one round trip). Only a server refusing EVAL itself turns scripts off."""
    with own_prefix("scriptfail") as prefix:
        async with subscribed(SHARED_REDIS, prefix) as gens:
            run = gens.guard.run
            await run(lambda r: r.set(gens.key, b"not a hash"))
            await gens.bump(["a"])
            assert not gens.coherent  # the bump could not be recorded: nothing is trusted
            assert gens.scripted
            await run(lambda r: r.delete(gens.key))
            await eventually(lambda: gens.coherent, "the resync after the failed bump")
            rounds = 0

            async def counted(call):  # type: ignore[no-untyped-def]
                nonlocal rounds
                rounds += 1
                return await run(call)

            gens.guard.run = counted  # type: ignore[method-assign]
            await gens.bump(["a"])
            assert (rounds, gens.scripted, gens.coherent) == (1, True, True)
            stored = await run(lambda r: r.hget(gens.key, "a"))
            assert int(stored) == gens.gens["a"] >= 1


async def test_notifications_heard_together_are_one_bump() -> None:
    """A commit's notifications (one per table it wrote) are distrusted here at once and
    recorded and announced together: one bump, not one Redis round per notification."""
    with own_prefix("coalesce") as prefix:
        async with subscribed(SHARED_REDIS, prefix) as gens:
            coalescer = Coalescer(gens)
            bumped: list[set[str]] = []
            bump = gens.bump

            async def counted(names, *, wait: bool = True) -> None:
                bumped.append(set(names))
                await bump(names, wait=wait)

            gens.bump = counted  # type: ignore[method-assign]
            tables = ("stock_levels", "stock_movements", "lots", "audit_log")
            before = gens.vector(("products",))
            for table in tables:
                coalescer.add({table})
                assert gens.vector((table,))[0] < 0  # distrusted before any round trip
            assert gens.vector(("products",)) == before  # what it did not name stays
            await eventually(lambda: bool(bumped) and coalescer.flushing.done(), "the bump")
            assert bumped == [set(tables)]
            assert gens.vector(tables) == (gens.gens.get(EPOCH, 0), 1, 1, 1, 1)
            # Heard again and again while a bump is pending: settled all the same afterwards.
            for _ in range(3):
                coalescer.add({"lots", "orders"})
            await eventually(lambda: len(bumped) == 2 and coalescer.flushing.done(), "the bump")
            assert not gens.unsettled
            await coalescer.close()


async def test_a_write_elsewhere_is_seen_while_a_bump_here_is_in_flight() -> None:
    """Process A hears of a write and is about to record its bump; meanwhile B records and
    announces another write of the same table, acknowledged by A. Nothing A could have built
    in between may be served afterwards: A never guesses a counter of its own (a guess equal to
    the value B's write got would have hidden that write here: 4 stale answers in 10,000
    differential operations before)."""
    with own_prefix("inflight") as prefix:
        async with subscribed(SHARED_REDIS, prefix) as a, subscribed(SHARED_REDIS, prefix) as b:
            coalescer = Coalescer(a)
            release = asyncio.Event()
            bump = a.bump

            async def held(names, *, wait: bool = True) -> None:
                await release.wait()  # A's round trip, slow
                await bump(names, wait=wait)

            a.bump = held  # type: ignore[method-assign]
            start = a.vector(("products",))
            coalescer.add({"products"})  # A heard of write 1
            during = a.vector(("products",))  # what an entry built now would be stamped with
            await b.bump(["products"])  # write 2, acknowledged by A
            assert a.vector(("products",)) not in (start, during)
            release.set()
            await eventually(lambda: coalescer.flushing.done(), "A's bump")
            assert a.vector(("products",)) == b.vector(("products",)) != start
            assert a.vector(("products",))[1] == 2  # both writes, from Redis
            await coalescer.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, so that it can be stopped and started again."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


async def test_lost_subscription_is_incoherent_until_resynced(own_redis: RedisServer) -> None:
    """Redis stopped: the cache stops being trusted at once; restarted: a fresh subscription
    resyncs (the epoch moves, counters a restarted Redis lost are lifted) and messages flow;
    kick() drops and renews the subscription the same way."""
    async with subscribed(own_redis.url, "lost") as gens:
        dropped = asyncio.Event()
        gens.on_incoherent.append(dropped.set)
        await gens.bump(["orders"])
        before = gens.gens[EPOCH]
        own_redis.stop()
        await asyncio.wait_for(dropped.wait(), 10)
        assert not gens.coherent
        own_redis.start()
        await eventually(lambda: gens.coherent, "resubscribing after the restart")
        assert gens.gens[EPOCH] > before
        peer = redis.Redis(port=own_redis.port)
        try:
            assert int(peer.hget("lost:gen", "orders")) >= gens.gens["orders"]  # lifted
            peer.publish("lost:events", orjson.dumps({"g": {"suppliers": 41}, "id": "t"}))
            await eventually(lambda: gens.gens.get("suppliers") == 41, "a message after it")
            dropped.clear()
            epoch = gens.gens[EPOCH]
            gens.resubscribe()
            await asyncio.wait_for(dropped.wait(), 10)
            await eventually(lambda: gens.coherent, "resubscribing after kick()")
            assert gens.gens[EPOCH] > epoch
            peer.publish("lost:events", orjson.dumps({"g": {"suppliers": 42}, "id": "t"}))
            await eventually(lambda: gens.gens.get("suppliers") == 42, "a message after kick()")
        finally:
            peer.close()


def certificate(workdir: Path) -> Path:
    """A self-signed certificate (and key, key.pem beside it) for 127.0.0.1: its own CA."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert


def tls_server(workdir: Path, cert: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """redis-server speaking only TLS on port, answering PING before this returns."""
    workdir.mkdir(exist_ok=True)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    key = cert.with_name("key.pem")
    process = subprocess.Popen(
        [
            *(binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--dir", str(workdir)),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_timeout=0.5
    )
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return process
            except redis.RedisError:
                if time.monotonic() > deadline:
                    process.kill()
                    raise
                time.sleep(0.02)
    finally:
        client.close()


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop by PID."""
    for process in processes:
        process.kill()
        process.wait(10)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """One Redis speaking only TLS; yields a rediss:// URL that trusts its certificate."""
    cert, port = certificate(tmp_path), free_port()
    process = tls_server(tmp_path / "node", cert, port)
    yield f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    stop([process])


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[str]:
    """Three TLS-only masters joined into a cluster (TLS on the bus too); yields a
    rediss+cluster:// URL whose first seed is down."""
    cert = certificate(tmp_path)
    ports = []
    while len(ports) < 3:
        if (port := free_port()) <= 55000:  # its bus port, port + 10000, must be one too
            ports.append(port)
    flags = ("--tls-cluster", "yes", "--cluster-enabled", "yes")
    processes = [
        tls_server(tmp_path / f"node{i}", cert, port, *flags, "--cluster-config-file", "nodes.conf")
        for i, port in enumerate(ports)
    ]
    try:
        subprocess.run(
            [
                *("redis-cli", "--tls", "--cacert", str(cert), "--cluster", "create"),
                *(f"127.0.0.1:{port}" for port in ports),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in ports:
            client = redis.Redis(
                host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_timeout=1
            )
            deadline = time.monotonic() + 30
            try:
                while client.cluster("info").get("cluster_state") != "ok":
                    assert time.monotonic() < deadline, "the TLS cluster did not become ok"
                    time.sleep(0.05)
            finally:
                client.close()
        seeds = ",".join(f"127.0.0.1:{port}" for port in (free_port(), *ports[1:]))
        yield f"rediss+cluster://{seeds}?ssl_ca_certs={cert}"
    finally:
        stop(processes)


async def test_tls_url_subscribes_and_acknowledges(tls_redis: str) -> None:
    """Over rediss:// (certificate checked against the URL's CA) two subscribers resync, apply
    each other's bumps and acknowledge them, as over redis://."""
    async with subscribed(tls_redis, "tls") as a, subscribed(tls_redis, "tls") as b:
        await a.bump(["categories"])
        assert b.gens["categories"] == a.gens["categories"] >= 1


async def test_tls_cluster_url_meets_on_one_node(tls_cluster: str) -> None:
    """Over rediss+cluster:// (a seed down) the subscribers and the publishers meet on the
    node owning the channel's slot: a bump returns once the peer has applied it."""
    async with subscribed(tls_cluster, "tlsc") as a, subscribed(tls_cluster, "tlsc") as b:
        await a.bump(["suppliers"])
        assert b.gens["suppliers"] == a.gens["suppliers"] >= 1
        await b.bump(["suppliers"])
        assert a.gens["suppliers"] == b.gens["suppliers"] >= 2
