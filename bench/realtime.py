"""Realtime fan-out: N subscribers on one proxy process, one row change every interval; reports
the delivery latency (commit to client) percentiles and the proxy's RSS. Not a CI test.

Each subscriber is a bare Phoenix socket (vsn 1.0.0) joined to `products` UPDATEs filtered on
one product's id; `--fanout` subscribers watch each product, so each change goes to that many
sockets while the proxy still weighs every channel's binding. `--fanout 1000` sends every change
to every socket. Latency: the change carries its wall-clock send time in the row's name.

Usage: .venv/bin/python bench/realtime.py [--subscribers 1000] [--fanout 10]
       [--interval-ms 10] [--seconds 30] [--clients 2] [--sql-dir sql]"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.gate.tokens import mint  # noqa: E402
from proxy.local.migrate import migrate  # noqa: E402
from tests.support.domain import build_world  # noqa: E402
from tests.support.process import start_proxy  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "nimbus_bench_realtime"
SECRET = "bench-" + secrets.token_hex(24)


def database(sql_dir: Path) -> str:
    """A fresh migrated database with the test world."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(NAME))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(NAME)))
    url = psycopg.conninfo.make_conninfo(ADMIN, dbname=NAME)
    migrate(url, sql_dir=sql_dir, echo=lambda _line: None)
    return url


def products(url: str, organization: str, count: int) -> list[str]:
    """count products of organization to change."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            str(row[0])
            for row in conn.execute(
                "insert into public.products (organization_id, sku, name)"
                " select %s, 'rt-' || n, 'p' || n from generate_series(1, %s) as n returning id",
                (organization, count),
            )
        ]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds pid has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of pid in MB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    value = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith("Vm")}
    return value["VmRSS"] / 1024, value["VmHWM"] / 1024


async def subscriber(session, url, anon, token, product, latencies, ready) -> None:
    """One socket: join, then record the latency of every change until cancelled."""
    async with session.ws_connect(
        url + "/realtime/v1/websocket", params={"apikey": anon, "vsn": "1.0.0"}, max_msg_size=0
    ) as ws:
        binding = {
            "event": "UPDATE",
            "schema": "public",
            "table": "products",
            "filter": f"id=eq.{product}",
        }
        await ws.send_str(
            orjson.dumps(
                {
                    "topic": "realtime:bench",
                    "event": "phx_join",
                    "ref": "1",
                    "join_ref": "1",
                    "payload": {"config": {"postgres_changes": [binding]}, "access_token": token},
                }
            ).decode()
        )
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket ended: {frame.type} {frame.data!r}")
            message = orjson.loads(frame.data)
            if message["event"] == "phx_reply" and message["ref"] == "1":
                assert message["payload"]["status"] == "ok", message
                ready.release()
            elif message["event"] == "postgres_changes":
                sent = float(message["payload"]["data"]["record"]["name"])
                latencies.append(time.time() - sent)


async def writer(url: str, ids: list[str], interval: float, seconds: float) -> int:
    """One committed update every interval, round robin over ids; how many were made."""
    made = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            await conn.execute(
                "update public.products set name = %s where id = %s",
                (repr(time.time()), ids[made % len(ids)]),
            )
            made += 1
            await asyncio.sleep(max(0.0, start + made * interval - time.monotonic()))
    return made


async def subscribers(base, anon, token, products_, ready, stop, results) -> None:
    """One client process's share of the sockets: connect them all, report ready, record
    latencies until told to stop, then send them back."""
    latencies: list[float] = []
    joined = asyncio.Semaphore(0)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(subscriber(session, base, anon, token, p, latencies, joined))
            for p in products_
        ]
        async with asyncio.timeout(120):
            for _ in products_:
                await joined.acquire()
        ready.put(len(products_))
        await asyncio.to_thread(stop.wait)
        lost = sum(1 for t in tasks if t.done())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    results.put((latencies, lost))


def client_process(*args) -> None:
    """Entry point of a client process."""
    asyncio.run(subscribers(*args))


def run(args) -> dict:
    """Set up, subscribe (in --clients processes), write, measure."""
    url = database(Path(args.sql_dir))
    world = build_world(url)
    ids = products(url, world.a.id, max(1, args.subscribers // args.fanout))
    state = Path(tempfile.mkdtemp(prefix="nimbus-bench-realtime-"))
    proc, base = start_proxy(
        state,
        NIMBUS_DATABASE_URL=url,
        NIMBUS_JWT_SECRET=SECRET,
        NIMBUS_POSTGREST_URL="http://127.0.0.1:9",
        NIMBUS_ACCESS_LOG="false",
        NIMBUS_LOG_LEVEL="WARNING",
    )
    context = multiprocessing.get_context("spawn")
    ready, results, stop = context.Queue(), context.Queue(), context.Event()
    workers = []
    try:
        anon = mint(SECRET, role="anon", ttl=3600)
        token = mint(SECRET, sub=world.a.users["viewer"], ttl=3600)
        watched = [ids[n % len(ids)] for n in range(args.subscribers)]
        for k in range(args.clients):
            share = watched[k :: args.clients]
            worker = context.Process(
                target=client_process, args=(base, anon, token, share, ready, stop, results)
            )
            worker.start()
            workers.append(worker)
        joined = sum(ready.get(timeout=180) for _ in workers)
        assert joined == args.subscribers, joined
        idle = rss_mb(proc.process.pid)[0]
        time.sleep(1)
        cpu_before = cpu_s(proc.process.pid)
        made = asyncio.run(writer(url, ids, args.interval_ms / 1000, args.seconds))
        time.sleep(2)  # the last deliveries
        rss, peak = rss_mb(proc.process.pid)
        cpu = cpu_s(proc.process.pid) - cpu_before
        stop.set()
        latencies: list[float] = []
        lost = 0
        for _ in workers:
            got, dropped = results.get(timeout=60)
            latencies += got
            lost += dropped
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        proc.stop()
    fanout = min(args.fanout, args.subscribers)
    ms = sorted(x * 1000 for x in latencies)
    pick = lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 1) if ms else None  # noqa: E731
    return {
        "subscribers": args.subscribers,
        "fanout": fanout,
        "interval_ms": args.interval_ms,
        "seconds": args.seconds,
        "client_processes": args.clients,
        "changes": made,
        "delivered": len(ms),
        "expected": made * fanout,
        "sockets_lost": lost,
        "latency_ms": {
            "p50": pick(0.5),
            "p90": pick(0.9),
            "p99": pick(0.99),
            "max": round(ms[-1], 1) if ms else None,
            "mean": round(statistics.fmean(ms), 1) if ms else None,
        },
        "proxy_cpu_s": round(cpu, 2),
        "proxy_rss_mb": {
            "idle_subscribed": round(idle, 1),
            "end": round(rss, 1),
            "peak": round(peak, 1),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    """Parse arguments, run once, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--fanout", type=int, default=10)
    parser.add_argument("--interval-ms", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--sql-dir", default=str(ROOT / "sql"))
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    return 0 if result["sockets_lost"] == 0 and result["delivered"] == result["expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
