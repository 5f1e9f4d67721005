"""Pass-through benchmark: wrk against direct PostgREST and against the proxy, same run.

Usage: .venv/bin/python bench/passthrough.py [--path /products?...] [--duration 10]
Creates (once) the database nimbus_bench, migrates it, loads the demo data, starts its own
PostgREST and proxy on free ports, and prints one line per target plus the ratio."""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.datacli import seed_demo  # noqa: E402
from proxy.localstack import start_postgrest  # noqa: E402
from proxy.migrate import ensure_database, migrate  # noqa: E402
from proxy.tokens import mint  # noqa: E402
from tests.support.process import start_proxy  # noqa: E402

DB = "postgresql://postgres@127.0.0.1:5432/nimbus_bench"
SECRET = secrets.token_urlsafe(48)  # per run: the bench starts its own PostgREST


def wrk(url: str, token: str, duration: int, threads: int, conns: int) -> dict:
    """One warm-up and one measured wrk run; returns the Lua reporter's JSON."""
    base = ["wrk", "-t", str(threads), "-c", str(conns), "-H", f"Authorization: Bearer {token}"]
    script = ["-s", str(ROOT / "bench" / "wrk_report.lua")]
    subprocess.run([*base, "-d", "3s", url], capture_output=True, check=True)
    out = subprocess.run(
        [*base, *script, "-d", f"{duration}s", url], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Set up, measure direct then proxy, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", default="/products?select=id,name,sku,price&order=id&limit=10")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    ensure_database(DB)
    migrate(DB, echo=lambda _l: None)
    demo = seed_demo(DB)
    token = mint(SECRET, sub=demo["user_id"], org=demo.get("organization_id"), ttl=3600)
    state = Path(tempfile.mkdtemp(prefix="nimbus-bench-"))
    (state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
    pgrst = start_postgrest(database_url=DB, secret=SECRET, state_dir=state)
    proc, proxy_url = start_proxy(
        state,
        NIMBUS_POSTGREST_URL=pgrst.url,
        NIMBUS_JWT_SECRET=SECRET,
        NIMBUS_LOG_LEVEL="WARNING",
        NIMBUS_CACHE_ENABLED="false",
    )
    try:
        results = {
            "direct PostgREST": wrk(
                pgrst.url + args.path, token, args.duration, args.threads, args.connections
            ),
            "proxy pass-through": wrk(
                proxy_url + "/rest/v1" + args.path,
                token,
                args.duration,
                args.threads,
                args.connections,
            ),
        }
    finally:
        proc.stop()
        pgrst.stop()
    base = results["direct PostgREST"]
    print(f"GET {args.path}  wrk -t{args.threads} -c{args.connections} -d{args.duration}s")
    print(f"{'target':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>8}")
    for name, r in results.items():
        print(
            f"{name:<22}{r['rps']:>10.0f}{r['p50_us'] / 1000:>9.2f}{r['p99_us'] / 1000:>9.2f}"
            f"{r['errors']:>8}{r['rps'] / base['rps']:>8.2f}"
        )


if __name__ == "__main__":
    main()
