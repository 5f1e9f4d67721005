"""Side-by-side benchmark: direct PostgREST, nginx peers and the proxy (pass-through, L1 hit,
L2-only hit, ETag 304) on issue 7's scenarios, all in one run against the same PostgREST.

Usage: .venv/bin/python bench/run.py [--duration 10] [--scenarios S1,S2,...] [--workers 1]
                                     [--rounds 1]
Each figure is wrk (2 threads, 32 connections) after a 3 s warm-up; the table gives req/s,
p50/p99, errors (non-2xx included), the ratio to direct PostgREST, and the CPU seconds each
process used in the measured window. With --rounds N every target of a scenario is measured
once per round, in turn, and the table gives medians: the ratio is the median of the ratios
measured in the same round (listed after it), so a slow minute of this shared machine moves
both sides of one ratio rather than one side of all of them. Results also go to
bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenarios import SCENARIOS, StaleChecker, wrk
from stack import DB, ROOT, Stack

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and, recursively, its live children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return 0.0
    return sum(int(x) for x in fields[11:13]) / TICKS + sum(cpu_seconds(int(c)) for c in children)


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) of a process and its live children, in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return 0.0
    found = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    own = int(found[0]) / 1024 if found else 0.0
    return max([own, *(peak_rss_mb(int(c)) for c in children)])


def fixtures(env: Stack) -> dict[str, Path]:
    """Ids and (product, location) pairs of the demo organization; stock for the order runs."""
    org = env.demo["organization_id"]
    with psycopg.connect(DB) as conn:
        ids = [
            str(r[0])
            for r in conn.execute(
                "select id from public.products where organization_id = %s order by id limit 1000",
                (org,),
            )
        ]
        pairs = [
            f"{p} {loc}"
            for p, loc in conn.execute(
                "select product_id, location_id from public.stock_levels where organization_id = %s"
                " order by product_id, location_id limit 201",
                (org,),
            )
        ]
    auth = {"Authorization": f"Bearer {env.token}"}
    with httpx.Client(base_url=env.postgrest.url, headers=auth, timeout=60) as client:
        for i, pair in enumerate(pairs):
            product, location = pair.split()
            body = {
                "product_id": product,
                "location_id": location,
                "quantity_delta": 200000 if i == 0 else 20000,
                "reason": "bench stock",
            }
            client.post("/rpc/adjust_stock", json=body).raise_for_status()
    with psycopg.connect(DB) as conn:
        pairs_b = [
            f"{p} {loc}"
            for p, loc in conn.execute(
                "select product_id, location_id from public.stock_levels where organization_id = %s"
                " order by product_id, location_id limit 200",
                (env.tenant_b["organization_id"],),
            )
        ]
    folder = Path(tempfile.mkdtemp(prefix="nimbus-bench-ids-"))
    (folder / "ids").write_text("\n".join(ids) + "\n")
    (folder / "pairs").write_text("\n".join(pairs[:200]) + "\n")
    (folder / "checker").write_text(pairs[200])
    (folder / "pairs_b").write_text("\n".join(pairs_b) + "\n")
    (folder / "writer").write_text(env.token + "\n")  # S6t: organization A writes
    (folder / "reader").write_text(env.token_b + "\n")  # S6t: organization B reads
    names = ("ids", "pairs", "checker", "pairs_b", "writer", "reader")
    return {name: folder / name for name in names}


def measure(env: Stack, scenario, target: str, headers: dict, seconds: int, files) -> tuple:
    """Warm up, then one measured wrk run with CPU accounting (and the stale check for S6)."""
    base = env.targets[target]
    with env.alone(target):
        wrk(scenario, base, headers, 3, files)
        pids = {"postgrest": env.pids["PostgREST"], "proxy": env.pids.get(target)}
        before = {k: cpu_seconds(p) for k, p in pids.items() if p}
        checker = None
        if scenario.kind in ("mix", "tenants"):  # the writer (organization A) reads its writes
            product, location = files["checker"].read_text().split()
            checker = StaleChecker(base, headers, product, location)
            checker.start()
        result = wrk(scenario, base, headers, seconds, files)
        if checker is not None:
            checker.stop.set()
            checker.join()
            result["stale"] = f"{checker.stale}/{checker.checks}"
        cpu = {k: round(cpu_seconds(p) - before[k], 2) for k, p in pids.items() if p}
    return result, cpu


def main() -> None:
    """Run the chosen scenarios against their targets; print one table per scenario."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--scenarios", default="S1,S1m,S2,S3,S4,S5,S6,S6t,S6w,S7,S7h")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        env = Stack(stack, workers=args.workers)
        files = fixtures(env)
        auth = {"Authorization": f"Bearer {env.token}"}
        for name in args.scenarios.split(","):
            scenario = SCENARIOS[name]
            rounds = [
                one_round(env, scenario, auth, args.duration, files)
                for _ in range(max(1, args.rounds))
            ]
            rows = combine(rounds)
            print_table(scenario, rows, env.baseline.get(name))
            results.append({"scenario": name, "path": scenario.path, "rows": rows})
            if "direct PostgREST" in scenario.targets:
                env.baseline[name] = rows[0][1]["rps"]
        # Before the stack stops: the proxies' peak memory over the whole run.
        rss = {name: round(peak_rss_mb(pid), 1) for name, pid in env.pids.items()}
        print("\npeak RSS (MB, largest process of each):", rss)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    summary = {"scenarios": results, "peak_rss_mb": rss}
    (out / "latest.json").write_text(json.dumps(summary, indent=1))


def one_round(env: Stack, scenario, auth: dict, seconds: int, files) -> list[tuple]:
    """Every target of the scenario once, in turn (and an ETag revalidation of the L1 hit)."""
    rows = [(t, *measure(env, scenario, t, auth, seconds, files)) for t in scenario.targets]
    if scenario.kind == "get":
        l1 = env.targets["cache (L1)"]
        tag = httpx.get(l1 + scenario.path, headers=auth).headers.get("etag")
        if tag:
            revalidate = {**auth, "If-None-Match": tag}
            result, cpu = measure(env, scenario, "cache (L1)", revalidate, seconds, files)
            rows.append(("ETag 304 (L1)", result, cpu))
    return rows


def combine(rounds: list[list[tuple]]) -> list[tuple]:
    """One row per target: medians over the rounds, the ratio to direct PostgREST as the median
    of the per-round ratios (with each round's ratio), errors and stale reads summed."""
    if len(rounds) == 1:
        return rounds[0]
    rows = []
    for i, (target, _, _) in enumerate(rounds[0]):
        runs = [r[i][1] for r in rounds]
        cpus = [r[i][2] for r in rounds]
        merged = {
            key: statistics.median(run[key] for run in runs)
            for key in ("rps", "p50_us", "p90_us", "p99_us")
        }
        merged["errors"] = sum(run["errors"] for run in runs)
        merged["requests"] = sum(run["requests"] for run in runs)
        merged["rounds_rps"] = [run["rps"] for run in runs]
        if rounds[0][0][0] == "direct PostgREST":
            ratios = [r[i][1]["rps"] / r[0][1]["rps"] for r in rounds]
            merged["ratio"] = statistics.median(ratios)
            merged["round_ratios"] = [round(x, 2) for x in ratios]
        if target == "ETag 304 (L1)":  # against the L1 hit of the same round
            l1 = next(j for j, row in enumerate(rounds[0]) if row[0] == "cache (L1)")
            merged["vs_l1"] = [round(r[i][1]["rps"] / r[l1][1]["rps"], 2) for r in rounds]
        if "stale" in runs[0]:
            stale = [tuple(map(int, run["stale"].split("/"))) for run in runs]
            merged["stale"] = f"{sum(s for s, _ in stale)}/{sum(c for _, c in stale)}"
        cpu = {k: statistics.median(c[k] for c in cpus) for k in cpus[0]}
        rows.append((target, merged, cpu))
    return rows


def print_table(scenario, rows, baseline) -> None:
    """One scenario's figures, with ratios to direct PostgREST in this run."""
    direct = rows[0][1]["rps"] if rows[0][0] == "direct PostgREST" else None
    print(f"\n{scenario.name}  {scenario.kind} {scenario.path}")
    print(f"{'target':<20}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'err':>7}{'x direct':>9}  cpu s")
    for target, r, cpu in rows:
        ratio = f"{r.get('ratio', r['rps'] / (direct or 1)):>9.2f}" if direct else f"{'':>9}"
        extra = f"  stale {r['stale']}" if "stale" in r else ""
        if "round_ratios" in r:
            extra += f"  rounds {r['round_ratios']}"
        if "vs_l1" in r:
            extra += f"  x L1 hit per round {r['vs_l1']}"
        print(
            f"{target:<20}{r['rps']:>9.0f}{r['p50_us'] / 1000:>8.2f}{r['p99_us'] / 1000:>8.2f}"
            f"{r['errors']:>7}{ratio}  {cpu}{extra}"
        )


if __name__ == "__main__":
    main()
