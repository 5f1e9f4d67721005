"""The start-up check of the aiohttp internals the edge uses (proxy/edge/capability.py): it finds
what differs, and when anything does, the proxy serves through stock aiohttp — the HTTP suite
passes through it.

The forced fallback is real: a sitecustomize module (on PYTHONPATH of the processes started here)
makes the installed aiohttp claim another version, so the check fails in the proxy itself."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from proxy.edge import capability
from proxy.edge.protocol import ProxyRunner
from tests.support.process import start_proxy
from tests.test_hitpath import hit_path_count

ROOT = Path(__file__).resolve().parents[1]
PRETEND = 'import aiohttp\naiohttp.__version__ = "3.99.0"  # tests/test_edge_fallback.py\n'


def test_the_pinned_aiohttp_has_every_internal() -> None:
    assert capability.missing() == []


def test_a_changed_internal_is_found(monkeypatch) -> None:
    """Another version, an attribute gone, a method whose parameters changed: each is named."""

    class Changed(RequestHandler):
        def data_received(self, data: bytes, more: object = None) -> None: ...

    assert capability.missing(version="3.15.0") == ["aiohttp 3.15.0 (written against 3.14.5)"]
    monkeypatch.setattr(capability, "ATTRIBUTES", (*capability.ATTRIBUTES, "_no_such_slot"))
    assert capability.missing(handler=Changed) == [
        "RequestHandler._no_such_slot",
        "RequestHandler.data_received('self', 'data', 'more')",
    ]


def test_the_runner_falls_back_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="proxy.edge.capability"):
        assert capability.edge_runner(True, check=lambda: ["RequestHandler._waiter"]) is (
            web.AppRunner
        )
    assert "RequestHandler._waiter" in caplog.text and "stock aiohttp" in caplog.text
    assert capability.edge_runner(True, check=list) is ProxyRunner
    assert capability.edge_runner(False, check=lambda: pytest.fail("not checked")) is web.AppRunner


@pytest.fixture
def pretend_env(tmp_path) -> dict[str, str]:
    """PYTHONPATH with a sitecustomize that changes aiohttp's version in every process."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PRETEND)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_a_failed_check_serves_through_stock_aiohttp(pretend_env, upstream_env, auth, tmp_path):
    """The proxy says why in its log, and L1 hits are served by the full path, not the hit path."""
    proc, url = start_proxy(tmp_path, **upstream_env, **pretend_env)
    try:
        path = "/rest/v1/test_items?select=id&order=id&limit=3"
        with httpx.Client(base_url=url, headers=auth) as client:
            states = [client.get(path).headers["x-cache"] for _ in range(3)]
        assert states == ["MISS", "HIT", "HIT"]
        assert hit_path_count(url) == 0
        assert "aiohttp 3.99.0 (written against 3.14.5)" in proc.log()
    finally:
        assert proc.stop() == 0


def test_the_http_suite_passes_through_stock_aiohttp(pretend_env) -> None:
    """PostgREST's semantics through the proxy (tests/test_passthrough.py) and the cache's
    (tests/test_cache.py, its two long load tests aside), every proxy of them serving through
    stock aiohttp."""
    env = {**os.environ, **pretend_env}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
    command += ["tests/test_passthrough.py", "tests/test_cache.py"]
    command += ["-k", "not stays_under_150_mb and not read_your_writes_across_processes"]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
