"""Soak: mixed load (90% reads, 10% stock adjustments) against one proxy for a while, sampling
its RSS and open file descriptors; fails on any error or on growth once warmed up.

Usage: .venv/bin/python bench/soak.py [--seconds 600] [--chunk 30]   (what `make soak` runs)"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import fixtures
from scenarios import SCENARIOS, wrk
from stack import Stack

TARGET = "cache (L1)"


def sample(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kb / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def main() -> int:
    """Run the load in chunks, print one line per chunk, judge the run."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--chunk", type=int, default=30)
    args = parser.parse_args()
    with ExitStack() as stack:
        env = Stack(stack)
        files = fixtures(env)
        auth = {"Authorization": f"Bearer {env.token}"}
        pid = env.pids[TARGET]
        rows = []
        print(f"{'t s':>5}{'req/s':>9}{'errors':>8}{'rss MB':>9}{'fds':>6}")
        for i in range(max(1, args.seconds // args.chunk)):
            result = wrk(SCENARIOS["S6"], env.targets[TARGET], auth, args.chunk, files)
            rss, fds = sample(pid)
            rows.append((result["rps"], result["errors"], rss, fds))
            print(
                f"{(i + 1) * args.chunk:>5}{result['rps']:>9.0f}{result['errors']:>8}"
                f"{rss:>9.1f}{fds:>6}",
                flush=True,
            )
    errors = sum(r[1] for r in rows)
    # Open descriptors swing with the connections alive at the instant of sampling: compare
    # the highest value of the last half with the highest of the first half (after warm-up).
    cut = max(1, len(rows) // 5)
    half = max(cut + 1, len(rows) // 2)
    early, late = rows[cut:half] or rows[-1:], rows[half:] or rows[-1:]
    rss_growth = max(r[2] for r in late) - max(r[2] for r in early)
    fd_growth = max(r[3] for r in late) - max(r[3] for r in early)
    print(f"errors {errors}; after warm-up RSS {rss_growth:+.1f} MB, fds {fd_growth:+d}")
    return 1 if errors or rss_growth > 20 or fd_growth > 20 else 0


if __name__ == "__main__":
    sys.exit(main())
