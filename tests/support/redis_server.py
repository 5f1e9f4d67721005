"""A Redis server of the test's own (never the machine's shared one) for outage tests."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from proxy.local.localstack import free_port

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def own_prefix(name: str, url: str = SHARED_REDIS) -> Iterator[str]:
    """A key prefix of the caller's own on a shared Redis; its keys are deleted afterwards."""
    prefix = f"nimbus-{name}-" + secrets.token_hex(4)
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=prefix + ":*"))
        if keys:
            client.delete(*keys)
        client.close()


class RedisServer:
    """redis-server on a free port; stop() and start() again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:<port>/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> RedisServer:
        """Start and wait for PING."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), *extra]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return self
                except redis.RedisError:
                    time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop by PID (SIGKILL: an outage, not a shutdown)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _bus_safe_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid port too."""
    while (port := free_port()) > 55000:
        continue
    return port


class RedisCluster:
    """Three masters on free ports (cluster-enabled), created with redis-cli --cluster create."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.servers = []
        for i in range(masters):
            node_dir = workdir / f"node{i}"
            node_dir.mkdir()
            self.servers.append(RedisServer(node_dir, port=_bus_safe_port()))

    @property
    def url(self) -> str:
        """The URL form NIMBUS_REDIS_URL takes for a cluster."""
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self) -> RedisCluster:
        """Start the nodes, join them, wait until the cluster reports ok."""
        for server in self.servers:
            server.start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        for server in self.servers:
            client = redis.Redis(port=server.port, socket_timeout=1)
            try:
                while client.cluster("info").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("cluster did not become ok")
                    time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        """Stop every node by PID."""
        for server in self.servers:
            server.stop()
