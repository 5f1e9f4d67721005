"""The local stack's fall-backs: a private PostgreSQL cluster under the state directory when
none answers on NIMBUS_DATABASE_URL, and no Redis when none answers on NIMBUS_REDIS_URL."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from proxy.local.localstack import free_port
from proxy.ops.redisurl import parse as parse_redis_url


def postgres_answers(database_url: str) -> bool:
    """Whether the server of database_url accepts a connection (to its `postgres` database)."""
    admin = psycopg.conninfo.make_conninfo(database_url, dbname="postgres", connect_timeout=3)
    try:
        with psycopg.connect(admin):
            return True
    except psycopg.OperationalError:
        return False


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at url (a cluster URL: at any of its seed nodes)."""
    target = parse_redis_url(url)
    for host, port in target.nodes:
        client = redis.Redis.from_url(
            target.node_url(host, port), socket_timeout=1, socket_connect_timeout=1
        )
        try:
            if client.ping():
                return True
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
    return False


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster in state_dir/pgdata on a free port; stop() shuts it down."""

    data: Path
    port: int
    run_as: list[str]
    pg_ctl: str

    @property
    def url(self) -> str:
        """The URL of its `nimbus` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/nimbus"

    def stop(self) -> None:
        """pg_ctl stop (fast), waiting for it."""
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            check=False,
        )


def start_private_cluster(state_dir: Path) -> PrivateCluster:
    """initdb (once) and start a cluster owned by the `postgres` user when running as root
    (PostgreSQL refuses to run as root); raises RuntimeError saying what is missing."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "no PostgreSQL answers on NIMBUS_DATABASE_URL and initdb/pg_ctl are not installed:"
            " start PostgreSQL, or install it (apt-get install postgresql)"
        )
    data = (state_dir / "pgdata").resolve()
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if run_as:
            shutil.chown(data, "postgres", "postgres")
        _run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    port = free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"
    log = data / "server.log"
    _run([*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])
    return PrivateCluster(data, port, run_as, pg_ctl)


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        tool = next(Path(c).name for c in command if c.endswith(("initdb", "pg_ctl")))
        raise RuntimeError(f"{tool} failed: {' | '.join(tail)}")
