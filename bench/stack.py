"""The benchmark's own stack: a database (created and seeded once), PostgREST, proxy variants."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nginx import Nginx  # noqa: E402

from proxy.config import Settings  # noqa: E402
from proxy.gate.tokens import mint  # noqa: E402
from proxy.local.localstack import start_postgrest  # noqa: E402
from proxy.local.migrate import ensure_database, migrate  # noqa: E402
from proxy.local.seeding import seed_scale  # noqa: E402
from tests.support.process import start_proxy  # noqa: E402

# The large scale (100k products, 1.1M order items); seeded on first use (about 3 minutes).
DB = os.environ.get(
    "NIMBUS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nimbus_bench_large"
)

# Proxy variants measured side by side: name -> extra environment.
VARIANTS = {
    "pass-through": {"NIMBUS_CACHE_ENABLED": "false"},
    "cache (L1)": {},
    "cache (L2 only)": {"NIMBUS_CACHE_L1_BYTES": "0"},
}


def largest_organization(database_url: str) -> dict:
    """The owner and id of the largest seeded organization, seeding the large scale if needed."""
    query = (
        "select m.user_id::text, o.id::text from public.organizations as o"
        " join public.memberships as m on m.organization_id = o.id and m.role = 'owner'"
        " where o.slug = 'megamart'"
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query).fetchone()
    if row is None:
        print("seeding the large scale once (about 3 minutes)...", flush=True)
        seed_scale(database_url, "large", seed=1)
        # As a settled database would be: visibility map set, so index-only scans stay index-only.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        with psycopg.connect(database_url) as conn:
            row = conn.execute(query).fetchone()
    return {"user_id": row[0], "organization_id": row[1]}


def organization(database_url: str, slug: str) -> dict:
    """The owner and id of a seeded organization (the large scale's second: organization B)."""
    query = (
        "select m.user_id::text, o.id::text from public.organizations as o"
        " join public.memberships as m on m.organization_id = o.id and m.role = 'owner'"
        " where o.slug = %s"
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, (slug,)).fetchone()
    return {"user_id": row[0], "organization_id": row[1]}


class Stack:
    """Everything one benchmark run needs; stopped (by PID) when the ExitStack closes."""

    def __init__(self, stack: ExitStack, *, workers: int = 1) -> None:
        ensure_database(DB)
        # NIMBUS_TEST_SQL_DIR: a snapshot of sql/ (as the tests take it), e.g. while sql/ is edited.
        sql_dir = os.environ.get("NIMBUS_TEST_SQL_DIR")
        migrate(DB, **({"sql_dir": Path(sql_dir)} if sql_dir else {}), echo=lambda _l: None)
        self.demo = largest_organization(DB)
        self.secret = secrets.token_urlsafe(48)
        self.token = mint(
            self.secret, sub=self.demo["user_id"], org=self.demo["organization_id"], ttl=7200
        )
        # S6t's reader: another organization's owner (organization B; A is the demo one).
        self.tenant_b = organization(DB, "freshco")
        self.token_b = mint(
            self.secret,
            sub=self.tenant_b["user_id"],
            org=self.tenant_b["organization_id"],
            ttl=7200,
        )
        self.state = Path(tempfile.mkdtemp(prefix="nimbus-bench-"))
        stack.callback(shutil.rmtree, self.state, ignore_errors=True)
        (self.state / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
        self.postgrest = start_postgrest(database_url=DB, secret=self.secret, state_dir=self.state)
        stack.callback(self.postgrest.stop)
        self.prefix = "nimbus-bench-" + secrets.token_hex(4)
        # Registered before the proxies, so it runs after they stopped (a running proxy would
        # write its generations again).
        stack.callback(self._forget_redis_keys)
        self.proxies: dict[str, str] = {}
        self.pids: dict[str, int] = {"PostgREST": self.postgrest.process.pid}
        # Each variant in a Redis namespace of its own: they are separate deployments. Sharing
        # one made every write through a cached variant wait for the idle variants'
        # acknowledgements, and each variant's listener bump the same counters again (2.3 of 15
        # CPU seconds went to the idle variants in an 8 s S6 window of the cached one).
        for index, (name, extra) in enumerate(VARIANTS.items()):
            workdir = self.state / name.replace(" ", "_").replace("(", "").replace(")", "")
            workdir.mkdir()
            proc, url = start_proxy(
                workdir,
                NIMBUS_POSTGREST_URL=self.postgrest.url,
                NIMBUS_POSTGREST_ADMIN_URL=self.postgrest.admin_url,
                NIMBUS_DATABASE_URL=DB,
                NIMBUS_JWT_SECRET=self.secret,
                NIMBUS_REDIS_URL="redis://127.0.0.1:6379/0",
                NIMBUS_REDIS_PREFIX=f"{self.prefix}-{index}",
                NIMBUS_ACCESS_LOG="false",
                NIMBUS_LOG_LEVEL="WARNING",
                NIMBUS_WORKERS=str(workers),
                NIMBUS_RATE_LIMIT_READ="100000000/60",
                NIMBUS_RATE_LIMIT_WRITE="100000000/60",
                # One token drives all 32 connections: the fair share would hold it to 4 at
                # PostgREST at once. The bench measures the proxy's cost, not tenancy.
                NIMBUS_TENANT_MAX_INFLIGHT="0",
                # The analytics refresher would refresh the large data set's views during a
                # run (soon after S6's writes): PostgreSQL work that is not the proxy's cost.
                NIMBUS_ANALYTICS_REFRESH_S="0",
                # The product's default (the tests' start_proxy keeps answers from a key's
                # first request on, which most cache tests are about).
                NIMBUS_CACHE_MIN_USES=str(Settings.model_fields["cache_min_uses"].default),
                **extra,
            )
            stack.callback(proc.stop)
            self.proxies[name] = url
            self.pids[name] = proc.process.pid
        self.baseline: dict[str, float] = {}
        upstream_port = int(self.postgrest.url.rsplit(":", 1)[1])
        self.nginx: dict[str, str] = {}
        for name, cache in (("nginx", False), ("nginx proxy_cache", True)):
            peer = Nginx(self.state / name.replace(" ", "_"), upstream_port, cache=cache)
            stack.callback(peer.stop)
            self.nginx[name] = peer.url
            self.pids[name] = peer.process.pid
        self.targets = {"direct PostgREST": self.postgrest.url}
        self.targets.update({k: v + "/rest/v1" for k, v in self.nginx.items()})
        self.targets.update({k: v + "/rest/v1" for k, v in self.proxies.items()})

    @contextmanager
    def alone(self, target: str) -> Iterator[None]:
        """While target is measured, the other proxies and nginx are stopped (SIGSTOP, then
        SIGCONT): each target is a deployment of its own, and the idle ones would otherwise
        spend CPU on every write's notifications (their listeners and Realtime feeds) beside
        it. PostgREST always runs: every target needs it."""
        idle = [pid for name, pid in self.pids.items() if name not in ("PostgREST", target)]
        stopped = [member for pid in idle for member in _family(pid)]
        try:
            for pid in stopped:
                _signal(pid, signal.SIGSTOP)
            yield
        finally:
            for pid in stopped:
                _signal(pid, signal.SIGCONT)

    def _forget_redis_keys(self) -> None:
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=self.prefix + "-*"))
        if keys:
            client.delete(*keys)
        client.close()


def _family(pid: int) -> list[int]:
    """A process and its live descendants (a proxy's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [pid, *(member for child in children for member in _family(int(child)))]


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal one process of ours that may have ended meanwhile (nginx's cache loader does)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
