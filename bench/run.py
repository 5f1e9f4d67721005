"""Side-by-side benchmark: direct PostgREST vs the proxy (pass-through, L1 hit, L2-only hit, 304).

Usage: .venv/bin/python bench/run.py [--duration 10] [--scenarios S1,S2,S3,S4] [--workers 1]
Each figure is wrk (2 threads, 32 connections, 3 s warm-up) against the same PostgREST in the
same run; the table gives req/s, p50/p99, errors, the ratio to direct PostgREST, and the CPU
seconds each process used during the measured window."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import DB, ROOT, Stack

WRK = ROOT / "bench" / "wrk"
SCENARIOS = {
    "S1": "/products?select=id,name,sku,price&order=id&limit=10",
    "S2": "/products?select=id,name,sku,price,unit_cost&id=eq.{id}",
    "S3": "/products?select=id,name,category:categories(name),supplier:suppliers(name)"
    "&order=id&limit=20",
    "S4": "/rpc/dashboard",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and, recursively, its live children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return 0.0
    return sum(int(x) for x in fields[11:13]) / TICKS + sum(cpu_seconds(int(c)) for c in children)


def wrk(url: str, headers: dict, duration: int, ids: Path | None, template: str | None) -> dict:
    """One wrk run; returns the reporter's JSON."""
    base = ["wrk", "-t2", "-c32"]
    for k, v in headers.items():
        base += ["-H", f"{k}: {v}"]
    script = ["-s", str(WRK / ("pick.lua" if ids else "report.lua"))]
    tail = ["--", str(ids), template] if ids else []
    out = subprocess.run(
        [*base, *script, f"-d{duration}s", url, *tail], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Run every scenario against every target and print one table per scenario."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--scenarios", default="S1,S2,S3,S4")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with ExitStack() as stack:
        env = Stack(stack, workers=args.workers)
        auth = {"Authorization": f"Bearer {env.token}"}
        with psycopg.connect(DB) as conn:
            rows = conn.execute(
                "select id from public.products where organization_id = %s order by id limit 1000",
                (env.demo["organization_id"],),
            )
            ids = [str(r[0]) for r in rows]
        ids_file = Path(tempfile.mkstemp(suffix=".ids")[1])
        ids_file.write_text("\n".join(ids) + "\n")
        results = []
        for name in args.scenarios.split(","):
            path = SCENARIOS[name]
            targets = {"direct PostgREST": env.postgrest.url}
            targets.update({k: v + "/rest/v1" for k, v in env.nginx.items()})
            targets.update({k: v + "/rest/v1" for k, v in env.proxies.items()})
            rows = []
            for target, base in targets.items():
                rows.append((target, *measure(env, target, base, path, auth, args, ids_file)))
            l1 = env.proxies["cache (L1)"] + "/rest/v1"
            tag = None if "{id}" in path else httpx.get(l1 + path, headers=auth).headers.get("etag")
            if tag:
                revalidate = {**auth, "If-None-Match": tag}
                rows.append(
                    (
                        "ETag 304 (L1)",
                        *measure(env, "cache (L1)", l1, path, revalidate, args, ids_file),
                    )
                )
            print_table(name, path, rows)
            results.append({"scenario": name, "path": path, "rows": rows})
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "latest.json").write_text(json.dumps(results, indent=1))


def measure(env, target, base, path, headers, args, ids_file):
    """wrk numbers plus the CPU seconds of PostgREST and of the proxy under test."""
    pids = {"postgrest": env.pids["PostgREST"], "proxy": env.pids.get(target)}
    warm = base if "{id}" in path else base + path
    wrk(warm, headers, 3, ids_file if "{id}" in path else None, base_path(base) + path)
    before = {k: cpu_seconds(p) for k, p in pids.items() if p}
    if "{id}" in path:
        result = wrk(base, headers, args.duration, ids_file, base_path(base) + path)
    else:
        result = wrk(base + path, headers, args.duration, None, None)
    cpu = {k: round(cpu_seconds(p) - before[k], 2) for k, p in pids.items() if p}
    return result, cpu


def base_path(base: str) -> str:
    """The path prefix of a target URL ('' for PostgREST, '/rest/v1' for the proxy)."""
    return "/rest/v1" if base.endswith("/rest/v1") else ""


def print_table(name: str, path: str, rows) -> None:
    """One scenario's figures with ratios to direct PostgREST."""
    direct = rows[0][1]["rps"]
    print(f"\n{name}  GET {path}")
    print(f"{'target':<20}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'err':>6}{'x direct':>9}  cpu s")
    for target, r, cpu in rows:
        print(
            f"{target:<20}{r['rps']:>9.0f}{r['p50_us'] / 1000:>8.2f}{r['p99_us'] / 1000:>8.2f}"
            f"{r['errors']:>6}{r['rps'] / direct:>9.2f}  {cpu}"
        )


if __name__ == "__main__":
    main()
