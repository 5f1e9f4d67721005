"""A few targets of one scenario, round after round, without the full run's other targets:
`bench/quick.py S3 "cache (L1),direct PostgREST" 3` prints each target's req/s per round and
the median. For before/after pairs of a change, run it from each tree in turn (the proxies under
test import `proxy` from PYTHONPATH, e.g. a worktree of the earlier commit)."""

from __future__ import annotations

import statistics
import sys
from contextlib import ExitStack

from run import fixtures
from scenarios import SCENARIOS, wrk
from stack import Stack


def main() -> None:
    """Warm each target up, then the rounds (targets in turn within a round)."""
    scenario = SCENARIOS[sys.argv[1]]
    targets = sys.argv[2].split(",")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with ExitStack() as stack:
        env = Stack(stack)
        files = fixtures(env)
        auth = {"Authorization": f"Bearer {env.token}"}
        found: dict[str, list[float]] = {target: [] for target in targets}
        for _ in range(rounds):
            for target in targets:
                with env.alone(target):  # as bench/run.py measures: the others stopped
                    wrk(scenario, env.targets[target], auth, 3, files)
                    found[target].append(wrk(scenario, env.targets[target], auth, 6, files)["rps"])
    for target, runs in found.items():
        print(scenario.name, target, [round(r) for r in runs], round(statistics.median(runs)))


if __name__ == "__main__":
    main()
