"""Fault machinery of the battery's own: a TCP relay that adds delay, a PostgREST that can be
killed and restarted on the same ports, and a private PostgreSQL cluster (initdb/pg_ctl in a temp
dir on a free port) — never the machine's shared servers. Everything is stopped by PID."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from proxy.local.localstack import (
    PostgREST,
    authenticator_uri,
    free_port,
    postgrest_binary,
    start_postgrest,
)
from tests.conftest import ROOT

PG_BIN = Path(os.environ.get("NIMBUS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class DelayRelay:
    """127.0.0.1:<port> -> target; answers are held back `delay` seconds per chunk when set."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.delay = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> DelayRelay:
        """Listen; return once bound."""
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("delay relay did not start")
        return self

    def stop(self) -> None:
        """Close every relayed connection, then stop the loop and join the thread."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._writers: set = set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, reader, writer) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer, slow=False),
            self._pipe(up_reader, writer, slow=True),
            return_exceptions=True,
        )

    async def _pipe(self, reader, writer, *, slow: bool) -> None:
        try:
            while data := await reader.read(65536):
                if slow and self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


class RestartablePostgREST:
    """A PostgREST whose process can be killed and started again with the same config and ports."""

    def __init__(self, database_url: str, secret: str, state: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        (state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
        self.database_url, self.secret, self.state = database_url, secret, state
        self.pgrst: PostgREST = start_postgrest(
            database_url=database_url, secret=secret, state_dir=state
        )

    @property
    def url(self) -> str:
        """The API URL."""
        return self.pgrst.url

    @property
    def admin_url(self) -> str:
        """The admin URL (/ready)."""
        return self.pgrst.admin_url

    def kill(self) -> None:
        """SIGKILL by PID: a crash, not a shutdown."""
        self.pgrst.process.kill()
        self.pgrst.process.wait(10)

    def restart(self, timeout: float = 30) -> None:
        """Run the binary again on the same config file (same ports); wait for its /ready."""
        log = (self.state / "postgrest.log").open("ab")
        self.pgrst.process = subprocess.Popen(
            [str(postgrest_binary(self.state)), str(self.state / "postgrest.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PGRST_DB_URI": authenticator_uri(self.database_url),
                "PGRST_JWT_SECRET": self.secret,
            },
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.admin_url + "/ready", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("PostgREST did not come back")

    def stop(self) -> None:
        """Stop by PID."""
        self.pgrst.stop()


class PrivateCluster:
    """A throwaway PostgreSQL 15 cluster: initdb in a temp dir, trust auth, a free port."""

    def __init__(self) -> None:
        # initdb refuses to run as root: then the cluster belongs to the `postgres` OS user, in a
        # temp dir of its own (pytest's tmp dirs are private to root).
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.workdir = Path(tempfile.mkdtemp(prefix="nimbus-sec-pg-"))
        self.data = self.workdir / "data"
        self.sockets = self.workdir / "sock"
        self.sockets.mkdir()
        self.port = free_port()
        self.log = self.workdir / "postgres.log"
        if self.as_user:
            for path in (self.workdir, self.sockets):
                shutil.chown(path, "postgres", "postgres")

    @property
    def url(self) -> str:
        """Superuser URL of the cluster's postgres database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def init(self) -> PrivateCluster:
        """initdb and start."""
        if not (PG_BIN / "initdb").exists():
            raise FileNotFoundError(PG_BIN / "initdb")
        subprocess.run(
            [
                *self.as_user,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        extra = (
            f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.sockets}'\nfsync = on\nmax_connections = 50\n"
        )
        subprocess.run(
            [*self.as_user, "sh", "-c", 'cat >> "$1"', "sh", str(self.data / "postgresql.conf")],
            input=extra.encode(),
            check=True,
            timeout=30,
        )
        self._ctl("start")
        return self

    def restart(self, mode: str = "immediate") -> None:
        """Stop (immediate = crash, recovery from WAL on start) and start again."""
        self._ctl("stop", "-m", mode)
        self._ctl("start")

    def stop(self) -> None:
        """Stop the cluster (fast) and remove its directory."""
        try:
            self._ctl("stop", "-m", "fast")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)
