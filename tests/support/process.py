"""Starting `nimbus serve` as a real child process on a free port, and stopping it by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from proxy.local.localstack import free_port, stop_process


@dataclass
class Proc:
    """A child process and where its output goes."""

    process: subprocess.Popen
    log_path: Path
    url: str = ""

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM by PID, wait, SIGKILL if it does not exit; returns the exit code."""
        return stop_process(self.process, timeout)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")


def start_proxy(state_dir: Path, **env: str) -> tuple[Proc, str]:
    """Run the proxy with NIMBUS_* env; returns once /health answers."""
    port = free_port()
    log_path = state_dir / "proxy.log"
    full_env = {
        **os.environ,
        "NIMBUS_HOST": "127.0.0.1",
        "NIMBUS_PORT": str(port),
        "NIMBUS_STATE_DIR": str(state_dir),
        "NIMBUS_REDIS_URL": "",
        # Generous limits unless a test sets its own: most tests are not about rate limiting.
        "NIMBUS_RATE_LIMIT_READ": "1000000/1",
        "NIMBUS_RATE_LIMIT_WRITE": "1000000/1",
        "NIMBUS_RATE_LIMIT_AUTH": "1000000/1",
        # Answers kept from a key's first request unless a test sets its own: most cache tests
        # are about what a kept answer does (tests/test_cache_min_uses.py is about the default,
        # and the differential coherence test runs with it).
        "NIMBUS_CACHE_MIN_USES": "1",
        # No analytics refreshes unless a test asks (tests/test_refresher.py): a long-lived
        # proxy refreshing after its stock writes takes the session's refresh lock, and its
        # refresh NOTIFYs move other tests' analytics generations.
        "NIMBUS_ANALYTICS_REFRESH_S": "0",
        **env,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy.local.cli", "serve"],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
        )
    url = f"http://127.0.0.1:{port}"
    proc = Proc(process, log_path, url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited ({process.returncode}):\n{proc.log()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"proxy did not answer /health:\n{proc.log()}")


def start_proxies(tmp_path_factory, name: str, count: int, **env: str) -> list[Proc]:
    """`count` proxy processes with the same settings (sharing Redis when env names one), each
    in its own state directory; `proc.url` is where each answers."""
    return [start_proxy(tmp_path_factory.mktemp(f"{name}-{i}"), **env)[0] for i in range(count)]


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process pid holds (/proc: its fds' socket inodes, the
    ports of those inodes in /proc/net/tcp and tcp6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
