"""The operators' kit (deploy/prometheus, deploy/grafana) against the metrics a proxy exports.

promtool (Debian's `prometheus` package, `make deploy-tools`) checks the alert rules and the
dashboard's queries; a running proxy is scraped after a few requests, and every metric name the
rules and the dashboard use must be one it exports; every metric docs/OPERATIONS.md lists is on
the dashboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.process import start_proxy
from tests.support.redis_server import own_prefix
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "nimbus-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "nimbus-dashboard.json"
METRIC = re.compile(r"\bnimbus_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def rule_exprs() -> list[str]:
    """Every alert's expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    """Every query of every panel (rows included) and of the template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return exprs


def promtool(*args: str) -> subprocess.CompletedProcess:
    """Run promtool; it must be installed (make deploy-tools)."""
    assert shutil.which("promtool"), "promtool not installed: run `make deploy-tools`"
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_rules_and_the_dashboard_queries(tmp_path):
    """`promtool check rules` and `promtool test rules` pass; the dashboard's queries
    (Grafana's variables filled in) parse as PromQL too, checked as recording rules."""
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    # Unit tests of the rules: Redis down, a worker restart and a 5xx ratio fire as they should.
    tested = promtool("test", "rules", str(RULES.with_name("nimbus-rules.test.yml")))
    assert tested.returncode == 0, tested.stdout + tested.stderr

    def concrete(expr: str) -> str:
        expr = expr.replace("$__rate_interval", "5m").replace("${1}", "$1")
        expr = expr.replace("$job", ".*").replace("$instance", ".*")
        # label_values(...) is Grafana's, not PromQL: check the selector inside it.
        match = re.fullmatch(r"label_values\((.*), \w+\)", expr)
        return match.group(1) if match else expr

    rules = [
        {"record": f"nimbus:dashboard_query_{i}", "expr": concrete(e)}
        for i, e in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exported_names(text: str) -> set[str]:
    """Every sample name the exposition can carry: families, with their type's suffixes."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_kit_uses_is_exported(upstream_env, token_for, tmp_path):
    """Scrape a running proxy (with Redis) after a few requests: every nimbus_* name in the
    alert rules and the dashboard is exported, and the dashboard shows every metric
    docs/OPERATIONS.md lists."""
    with own_prefix("kit") as prefix:
        proc, url = start_proxy(
            tmp_path,
            **upstream_env,
            NIMBUS_REDIS_URL="redis://127.0.0.1:6379/0",
            NIMBUS_REDIS_PREFIX=prefix,
        )
        try:
            headers = {"Authorization": f"Bearer {token_for(str(uuid.uuid4()))}"}
            for _ in range(3):
                assert httpx.get(url + "/rest/v1/test_items?limit=1", headers=headers).is_success
            bad = {"Authorization": "Bearer not-a-token"}
            assert httpx.get(url + "/rest/v1/test_items", headers=bad).status_code == 401
            assert httpx.get(url + "/ready").status_code == 200
            text = httpx.get(url + "/metrics").text
        finally:
            assert proc.stop() == 0

    exported = exported_names(text)
    used = {m for expr in rule_exprs() + dashboard_exprs() for m in METRIC.findall(expr)}
    assert used, "no metric names found in the kit"
    assert used - exported == set(), "the kit uses metrics the proxy does not export"
    # Samples, not only declarations, for what those requests must have produced.
    samples = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    for name in (
        "nimbus_http_request_duration_seconds_bucket",
        "nimbus_upstream_request_duration_seconds_count",
        "nimbus_jwt_rejections_total",
        "nimbus_ratelimit_decisions_total",
        "nimbus_dependency_up",
        "nimbus_worker_restarts_total",
    ):
        assert name in samples, name

    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    documented = set(re.findall(r"^\| `(nimbus_[a-z0-9_]+)`", operations, flags=re.MULTILINE))
    assert documented, "no metric table in docs/OPERATIONS.md"
    on_dashboard = {m for expr in dashboard_exprs() for m in METRIC.findall(expr)}
    on_dashboard |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in on_dashboard}
    assert documented - on_dashboard == set(), "documented metrics missing from the dashboard"


def restarts(url: str) -> float | None:
    """nimbus_worker_restarts_total as /metrics shows it (summed over the workers); None when no
    worker answered (one just died: its share of the port refuses for a moment)."""
    try:
        text = httpx.get(url + "/metrics", timeout=5).text
    except httpx.TransportError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "nimbus_worker_restarts_total":
                return sample.value
    return None


def serving_pids(proc, url: str) -> set[int]:
    """The workers that answered so far (a new connection per call; pids from the access log)."""
    try:
        httpx.get(url + "/health", timeout=5)
    except httpx.TransportError:
        pass
    pids = set()
    for line in proc.log().splitlines():
        try:
            record = json.loads(line) if line.startswith("{") else {}
        except ValueError:  # a line still being written
            continue
        if record.get("logger") == "nimbus.access":
            pids.add(record["pid"])
    return pids


def test_worker_restarts_are_counted(upstream_env, tmp_path):
    """`--workers 2`: 0 restarts at start; a worker killed by a signal is replaced and counted
    (what NimbusWorkerRestarted alerts on)."""
    proc, url = start_proxy(tmp_path, **upstream_env, NIMBUS_WORKERS="2")
    try:
        wait_until(lambda: len(serving_pids(proc, url)) == 2, what="both workers serving")
        assert restarts(url) == 0.0
        victim = min(serving_pids(proc, url))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: restarts(url) == 1.0, timeout=20, what="one restart counted")
        # The replacement serves (its signal handlers are set) before the supervisor is stopped.
        wait_until(lambda: len(serving_pids(proc, url) - {victim}) == 2, what="a new worker")
    finally:
        assert proc.stop() == 0
