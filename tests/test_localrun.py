"""`nimbus up` where neither PostgreSQL nor Redis answers: it starts a private cluster, runs
without Redis (cache and limits per process), serves the demo, and Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from proxy.local.localstack import free_port
from tests.conftest import ROOT
from tests.support.wait import wait_until


@pytest.fixture
def state_dir():
    """A state directory the `postgres` user can reach (the cluster runs as that user)."""
    path = Path(tempfile.mkdtemp(prefix="nimbus-up-"))
    path.chmod(0o755)
    (path / "node_modules").symlink_to(ROOT / ".local" / "node_modules")
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_up_without_postgres_or_redis(state_dir: Path) -> None:
    """Banner names both fall-backs; the API answers from the private cluster; SIGINT stops
    the proxy, PostgREST and the cluster."""
    port = free_port()
    log = state_dir / "up.log"
    env = {
        **os.environ,
        "NIMBUS_STATE_DIR": str(state_dir),
        "NIMBUS_PORT": str(port),
        "NIMBUS_POSTGREST_URL": f"http://127.0.0.1:{free_port()}",
        "NIMBUS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nimbus",
        "NIMBUS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy.local.cli", "up"], env=env, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: "demo token:" in log.read_text(), timeout=120, what="the banner")
        text = log.read_text()
        assert "mode:        PostgreSQL: private cluster" in text
        assert "mode:        Redis: not reachable" in text
        token = next(ln.split()[-1] for ln in text.splitlines() if "demo token:" in ln)
        base = f"http://127.0.0.1:{port}"
        # The banner is printed only once the port listens: the first request must not be refused.
        assert httpx.get(base + "/health").status_code == 200
        assert httpx.get(base + "/ready").status_code == 200
        headers = {"Authorization": f"Bearer {token}"}
        # The product's default keeps a key's answer from its second request on.
        first, second, third = (
            httpx.get(base + "/api/v1/products?limit=3", headers=headers) for _ in range(3)
        )
        assert first.status_code == 200
        assert len(first.json()["data"]) == 3
        states = (first.headers["x-cache"], second.headers["x-cache"], third.headers["x-cache"])
        assert states == ("MISS", "MISS", "HIT")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0
    assert not (state_dir / "pgdata" / "postmaster.pid").exists()
