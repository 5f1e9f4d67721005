"""`nimbus serve --workers N`: N processes sharing the port (SO_REUSEPORT), supervised; each
exports its metrics through one directory so /metrics on any of them shows them all; a worker
that exits is marked dead there, so its gauges stop counting."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import FrameType

from prometheus_client import multiprocess

log = logging.getLogger(__name__)
RESTARTED = "NIMBUS_WORKER_RESTARTED"  # set for a worker started in place of one that died


def supervise(workers: int, extra_args: list[str]) -> int:
    """Run the workers until SIGTERM/SIGINT, restarting any that dies; returns the exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="nimbus-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "NIMBUS_WORKERS": str(workers)}
    command = [sys.executable, "-m", "proxy.local.cli", "serve", "--workers", "1", *extra_args]
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def spawn(restart: bool = False) -> None:
        # A worker started in place of a dead one counts itself (nimbus_worker_restarts_total).
        child = subprocess.Popen(command, env={**env, RESTARTED: "1"} if restart else env)
        children[child.pid] = child

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            # os.kill, not Popen.send_signal: that reaps an exited child here, in the handler,
            # and the loop's os.wait() below would then wait for it forever.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    code = 0
    try:
        while children:
            pid, status = os.wait()
            child = children.pop(pid, None)
            if child is None:
                continue
            # Its live gauges (in flight, open streams, dependencies up) leave /metrics with it;
            # its counters and histograms stay, as Prometheus expects of a restart.
            # (prometheus_client leaves this function unannotated)
            multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]
            exit_code = os.waitstatus_to_exitcode(status)
            if stopping:
                code = code or exit_code
                continue
            log.warning("worker %d exited (%d); starting another", pid, exit_code)
            time.sleep(1)
            if not stopping:  # a SIGTERM during the pause would never reach the new worker
                spawn(restart=True)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return code
