"""`nimbus serve --workers N`: N processes sharing the port (SO_REUSEPORT), supervised; each
exports its metrics through one directory so /metrics on any of them shows them all."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

log = logging.getLogger(__name__)


def supervise(workers: int, extra_args: list[str]) -> int:
    """Run the workers until SIGTERM/SIGINT, restarting any that dies; returns the exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="nimbus-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "NIMBUS_WORKERS": str(workers)}
    command = [sys.executable, "-m", "proxy.cli", "serve", "--workers", "1", *extra_args]
    children: dict[int, subprocess.Popen] = {}
    stopping = False

    def spawn() -> None:
        child = subprocess.Popen(command, env=env)
        children[child.pid] = child

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

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
            exit_code = os.waitstatus_to_exitcode(status)
            if stopping:
                code = code or exit_code
                continue
            log.warning("worker %d exited (%d); starting another", pid, exit_code)
            time.sleep(1)
            spawn()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return code
