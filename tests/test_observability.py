"""Metrics, JSON access logs and request ids, on a proxy that trusts 127.0.0.1 as a proxy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.process import start_proxy
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def observed(relay, postgrest, database_url, jwt_secret, tmp_path_factory):
    """A proxy process whose log we read, with 127.0.0.1 as a trusted proxy."""
    proc, url = start_proxy(
        tmp_path_factory.mktemp("observed"),
        NIMBUS_POSTGREST_URL=f"http://127.0.0.1:{relay.port}",
        NIMBUS_POSTGREST_ADMIN_URL=postgrest.admin_url,
        NIMBUS_DATABASE_URL=database_url,
        NIMBUS_JWT_SECRET=jwt_secret,
        NIMBUS_TRUSTED_PROXIES="127.0.0.1/32",
    )
    yield proc, url
    proc.stop()


def test_request_id_from_trusted_proxy_is_kept(observed, token_for) -> None:
    """A trusted proxy's X-Request-Id is echoed (and is the id in the access log)."""
    proc, url = observed
    rid = "lb-" + uuid.uuid4().hex
    resp = httpx.get(
        url + "/rest/v1/test_items?limit=1",
        headers={"X-Request-Id": rid, "Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"},
    )
    assert resp.headers["x-request-id"] == rid
    lines = [json.loads(line) for line in proc.log().splitlines() if rid in line]
    assert lines
    assert lines[-1]["route"] == "/rest/v1/{other}"  # test_items is not a product table
    assert lines[-1]["status"] == 200


def test_access_log_is_json_and_never_holds_a_token(observed, jwt_secret) -> None:
    """Every request logs one JSON line; tokens (valid or forged) never appear in the log."""
    from proxy.gate.tokens import mint

    proc, url = observed
    token = mint(jwt_secret, sub=str(uuid.uuid4()))
    forged = token[:-4] + "AAAA"
    for t in (token, forged):
        httpx.get(url + "/rest/v1/test_items?limit=1", headers={"Authorization": f"Bearer {t}"})
        httpx.get(url + "/rest/v1/test_items?limit=1", headers={"apikey": t})
    log = proc.log()
    assert token not in log
    assert forged not in log
    assert jwt_secret not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "nimbus.access"]
    assert {"request_id", "method", "route", "status", "duration_ms", "subject"} <= set(access[-1])
    assert {r["status"] for r in access[-4:]} >= {200, 401}


def test_metrics_exposition(observed, token_for) -> None:
    """/metrics speaks Prometheus text with request, upstream, cache and JWT series."""
    _proc, url = observed
    httpx.get(url + "/rest/v1/test_items?limit=2", headers={"Authorization": "Bearer x"})
    ok = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    httpx.get(url + "/rest/v1/test_items?limit=2", headers=ok)
    httpx.get(url + "/rest/v1/test_items?limit=2", headers=ok)
    resp = httpx.get(url + "/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    for series in (
        "nimbus_http_request_duration_seconds_bucket",
        "nimbus_upstream_request_duration_seconds_count",
        'nimbus_jwt_rejections_total{reason="malformed"}',
        'nimbus_cache_requests_total{level="l1",result="hit"}',
        'nimbus_dependency_up{dependency="listener"} 1.0',
        "nimbus_http_requests_in_flight",
    ):
        assert series in text, series


def _upstream_calls(url: str) -> float:
    """How many PostgREST answers the proxy has timed (every status class)."""
    text = httpx.get(url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nimbus_upstream_request_duration_seconds_count")
    )


def test_api_upstream_calls_are_timed(observed, token_for) -> None:
    """/api/v1's calls to PostgREST go through the same exchange as /rest/v1's: each is timed."""
    _proc, url = observed
    ok = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
    before = _upstream_calls(url)
    me = httpx.get(url + "/api/v1/auth/me", headers=ok)
    assert me.status_code == 200 and me.json()["data"]["memberships"] == []
    assert _upstream_calls(url) - before >= 1


def _in_flight(url: str) -> float:
    """nimbus_http_requests_in_flight as /metrics reports it (summed over live workers)."""
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("nimbus_http_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no nimbus_http_requests_in_flight in /metrics")


def _sockets(pid: int) -> set[str]:
    """The `socket:[inode]` names of process pid's open file descriptors."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            found.add(os.readlink(fd))
    return found


def _listens(pid: int, port: int) -> bool:
    """Whether process pid holds a socket listening on port (state 0A in /proc/net/tcp)."""
    inodes = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{cols[9]}]")
    return bool(_sockets(pid) & inodes)


def _owner(pids: list[int], proxy_port: int, client_port: int) -> int:
    """Which worker holds the server side of the connection from client_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            local, remote = (int(c.rsplit(":", 1)[1], 16) for c in cols[1:3])
            if (local, remote) == (proxy_port, client_port):
                inodes.add(f"socket:[{cols[9]}]")
    for pid in pids:
        if _sockets(pid) & inodes:
            return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_dead_worker_leaves_metrics(jwt_secret, tmp_path) -> None:
    """`serve --workers 2`: a killed worker's in-flight requests leave the live gauge at once."""
    from proxy.gate.tokens import mint
    from proxy.local.localstack import free_port, stop_process

    hole = socket.create_server(("127.0.0.1", 0))  # an upstream that accepts, never answers
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # until the test closes it
            while True:
                held.append(hole.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "NIMBUS_HOST": "127.0.0.1",
        "NIMBUS_PORT": str(port),
        "NIMBUS_STATE_DIR": str(tmp_path),
        "NIMBUS_POSTGREST_URL": f"http://127.0.0.1:{hole.getsockname()[1]}",
        "NIMBUS_UPSTREAM_TIMEOUT_S": "120",
        "NIMBUS_REDIS_URL": "",
        "NIMBUS_LISTEN_ENABLED": "false",
        "NIMBUS_JWT_SECRET": jwt_secret,
        "NIMBUS_SHUTDOWN_GRACE_S": "1",
        "NIMBUS_ACCESS_LOG": "false",
    }
    with (tmp_path / "serve.log").open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "proxy.local.cli", "serve", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    children = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
    url = f"http://127.0.0.1:{port}"
    clients: list[socket.socket] = []
    try:
        # Both workers listening: every one has bound the shared port.
        wait_until(lambda: len(children.read_text().split()) == 2, what="two workers")
        pids = [int(p) for p in children.read_text().split()]
        wait_until(
            lambda: all(_listens(pid, port) for pid in pids), timeout=20, what="both listening"
        )
        baseline = _in_flight(url)  # this very /metrics request, if it counts itself
        token = mint(jwt_secret, sub=str(uuid.uuid4()))
        request = (
            f"GET /rest/v1/test_items?limit=1 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        for _ in range(8):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(request)
            clients.append(client)
        wait_until(lambda: _in_flight(url) == baseline + 8, what="8 requests in flight")
        owners = [_owner(pids, port, c.getsockname()[1]) for c in clients]
        victim = owners[0]
        os.kill(victim, signal.SIGKILL)
        expected = baseline + 8 - owners.count(victim)
        wait_until(lambda: _in_flight(url) == expected, what="the dead worker's gauge gone")
    finally:
        for client in clients:
            client.close()
        workers = (
            [int(p) for p in children.read_text().split()] if supervisor.poll() is None else []
        )
        stop_process(supervisor, 15)
        for pid in workers:  # orphans only if the supervisor had to be killed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        hole.close()
        for conn in held:
            conn.close()
