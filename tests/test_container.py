"""The container image (deploy/Dockerfile), built and run on this machine with podman + runc.

No registry serves base images here: deploy/build.sh --debootstrap makes one from Debian's
packages (cached under .local/deploy/, so only the first run pays for debootstrap), builds the
wheels on the host with the image's Python, and builds the image with no network. The image then
runs with --network=host against the machine's PostgreSQL and Redis and this session's PostgREST.
Slow (about 3 minutes cold, under 1 warm), in CI: `make test` installs podman, runc and
debootstrap (`make deploy-tools`)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from proxy.config import Settings
from proxy.local.localstack import free_port
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TAG = "localhost/nimbus:test"
ENV = {**os.environ, "CONTAINERS_CONF": str(DEPLOY / "podman" / "containers.conf")}


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run podman with the project's containers.conf (runc, no default ulimits)."""
    return subprocess.run(
        ["podman", *args], env=ENV, capture_output=True, text=True, timeout=timeout, check=check
    )


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built by deploy/build.sh --debootstrap (what the docs tell operators to run)."""
    missing = [t for t in ("podman", "runc", "debootstrap") if not shutil.which(t)]
    assert not missing, f"{missing} not installed: run `make deploy-tools` (part of `make test`)"
    started = time.monotonic()
    result = subprocess.run(
        [str(DEPLOY / "build.sh"), "--debootstrap", "--tag", TAG],
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"image built in {time.monotonic() - started:.0f}s:\n{result.stderr}")
    assert result.stdout.strip().splitlines()[-1] == TAG
    return TAG


@pytest.mark.timeout(600)
def test_image_serves_and_stops_cleanly(image, postgrest, database_url, jwt_secret, token_for):
    """Non-root, /health (also as the image's HEALTHCHECK), /ready with PostgREST, PostgreSQL
    and Redis reached, an authenticated read through two workers, exit 0 on SIGTERM."""
    inspect = json.loads(podman("image", "inspect", image).stdout)[0]
    assert inspect["Config"]["User"] == "nimbus:nimbus"
    assert "/health" in " ".join(inspect["Healthcheck"]["Test"])

    port = free_port()
    name = "nimbus-test-" + secrets.token_hex(4)
    with own_prefix("container") as prefix:
        env = {
            "NIMBUS_HOST": "127.0.0.1",
            "NIMBUS_PORT": str(port),
            "NIMBUS_WORKERS": "2",
            "NIMBUS_POSTGREST_URL": postgrest.url,
            "NIMBUS_POSTGREST_ADMIN_URL": postgrest.admin_url,
            "NIMBUS_DATABASE_URL": database_url,
            "NIMBUS_REDIS_URL": "redis://127.0.0.1:6379/0",
            "NIMBUS_REDIS_PREFIX": prefix,
            "NIMBUS_JWT_SECRET": jwt_secret,
            "NIMBUS_SHUTDOWN_GRACE_S": "5",
        }
        env_args = [arg for key in env for arg in ("--env", key)]
        run = subprocess.run(
            ["podman", "run", "--detach", "--name", name, "--network=host", *env_args, image],
            env={**ENV, **env},  # values from the environment: nothing secret on the command line
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        url = f"http://127.0.0.1:{port}"
        try:
            assert podman("exec", name, "id", "-u").stdout.strip() != "0"

            def ready() -> bool:
                try:
                    body = httpx.get(url + "/ready", timeout=2).json()
                except (httpx.HTTPError, ValueError):
                    return False
                return body["status"] == "ready" and body["checks"]["cache"]["coherent"]

            wait_until(ready, timeout=60, what="/ready with a coherent cache in the container")
            body = httpx.get(url + "/ready").json()
            assert body["checks"]["cache"]["redis"] is True
            assert podman("healthcheck", "run", name, check=False).returncode == 0

            headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
            for _ in range(6):  # new connections: both workers answer
                resp = httpx.get(
                    url + "/rest/v1/test_items?select=id,name&limit=2", headers=headers
                )
                assert resp.status_code == 200, resp.text
                assert isinstance(resp.json(), list)
            assert httpx.get(url + "/rest/v1/test_items").status_code == 401
            assert "nimbus_http_request_duration_seconds_bucket" in httpx.get(url + "/metrics").text

            started = time.monotonic()
            podman("kill", "--signal", "TERM", name)
            waited = podman("wait", name, timeout=30)
            assert waited.stdout.strip() == "0", podman("logs", name).stderr[-4000:]
            assert time.monotonic() - started < 15
            logs = podman("logs", name)
            assert "Traceback" not in logs.stdout + logs.stderr
        finally:
            podman("rm", "--force", "--time", "0", name, check=False)


def test_compose_files_name_real_settings():
    """deploy/compose.yaml (proxy, PostgREST, Redis; PostgreSQL in the dev profile) and
    deploy/compose.hosted.yaml (proxy and Redis only) set only NIMBUS_* variables the proxy
    knows."""
    known = {"NIMBUS_" + name.upper() for name in Settings.model_fields}
    full = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    hosted = yaml.safe_load((DEPLOY / "compose.hosted.yaml").read_text())
    assert set(full["services"]) >= {"proxy", "postgrest", "redis", "postgres"}
    assert full["services"]["postgres"]["profiles"] == ["dev"]
    assert "profiles" not in full["services"]["proxy"]
    assert set(hosted["services"]) == {"proxy", "redis"}
    for doc in (full, hosted):
        env = doc["services"]["proxy"]["environment"]
        assert set(env) - known == set(), "unknown settings in compose"
        assert "NIMBUS_WORKERS" in env
