"""The benchmark's scenarios (issue 7's S1-S7) and the wrk invocation for each kind."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx

WRK = Path(__file__).resolve().parent / "wrk"


@dataclass(frozen=True)
class Scenario:
    """kind: get (one URL), pick (random id), unique (a URL no request repeats: every one a
    cache miss), mix (90/10 reads/adjustments), tenants (the mix split over two
    organizations: B reads, A adjusts), orders."""

    name: str
    kind: str
    path: str
    targets: tuple[str, ...]
    arg: str = ""


READ_TARGETS = (
    "direct PostgREST",
    "nginx",
    "nginx proxy_cache",
    "pass-through",
    "cache (L1)",
    "cache (L2 only)",
)
SCENARIOS = {
    "S1": Scenario(
        "S1", "get", "/products?select=id,name,sku,price&order=id&limit=10", READ_TARGETS
    ),
    "S1m": Scenario(
        "S1m",
        "unique",
        "/products?select=id,name,sku,price&order=id&limit=10&name=neq.miss-{n}",
        # nginx with and without its cache: what any proxy hop costs here (the floor of S1m).
        ("direct PostgREST", "nginx", "nginx proxy_cache", "pass-through", "cache (L1)"),
    ),
    "S2": Scenario(
        "S2", "pick", "/products?select=id,name,sku,price,unit_cost&id=eq.{id}", READ_TARGETS
    ),
    "S3": Scenario(
        "S3",
        "get",
        "/products?select=id,name,category:categories(name),supplier:suppliers(name)"
        "&order=id&limit=20",
        READ_TARGETS,
    ),
    "S4": Scenario("S4", "get", "/rpc/dashboard", READ_TARGETS),
    "S5": Scenario(
        "S5", "api", "/products?page=1&limit=10", ("pass-through", "cache (L1)", "cache (L2 only)")
    ),
    "S6": Scenario("S6", "mix", "", ("direct PostgREST", "pass-through", "cache (L1)")),
    # Two tenants: organization B's stock reads (90%) while organization A adjusts its own
    # stock (10%); with generations per organization, A's writes leave B's entries current.
    "S6t": Scenario("S6t", "tenants", "", ("direct PostgREST", "pass-through", "cache (L1)")),
    # The mix's floor: what the database gives stock adjustments alone (S6 does 10% of these).
    "S6w": Scenario("S6w", "mix", "", ("direct PostgREST",), "1"),
    "S7": Scenario("S7", "orders", "spread", ("direct PostgREST", "pass-through")),
    "S7h": Scenario("S7h", "orders", "hot", ("direct PostgREST", "pass-through")),
}


def base_path(base: str) -> str:
    """'' for PostgREST, '/rest/v1' for the proxies and nginx."""
    return "/rest/v1" if base.endswith("/rest/v1") else ""


def wrk(scenario: Scenario, base: str, headers: dict, seconds: int, files: dict) -> dict:
    """One wrk run (2 threads, 32 connections); returns the reporter's JSON line."""
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s"]
    if scenario.kind == "tenants":  # organization B reads; A's token is in files["writer"]
        headers = {**headers, "Authorization": "Bearer " + files["reader"].read_text().strip()}
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    prefix = base_path(base)
    if scenario.kind == "get":
        cmd += ["-s", str(WRK / "report.lua"), base + scenario.path]
    elif scenario.kind == "api":
        root = base.removesuffix("/rest/v1")
        cmd += ["-s", str(WRK / "report.lua"), root + "/api/v1" + scenario.path]
    elif scenario.kind == "unique":
        cmd += ["-s", str(WRK / "unique.lua"), base, "--", prefix + scenario.path]
    elif scenario.kind == "pick":
        cmd += ["-s", str(WRK / "pick.lua"), base, "--", str(files["ids"]), prefix + scenario.path]
    elif scenario.kind == "mix":
        cmd += ["-s", str(WRK / "mix.lua"), base, "--", str(files["pairs"]), prefix]
        cmd += [scenario.arg] if scenario.arg else []
    elif scenario.kind == "tenants":
        cmd += ["-s", str(WRK / "tenants.lua"), base, "--", str(files["pairs_b"]), prefix]
        cmd += [scenario.arg or "10", str(files["pairs"]), str(files["writer"])]
    else:
        cmd += [
            "-s",
            str(WRK / "orders.lua"),
            base,
            "--",
            str(files["pairs"]),
            prefix,
            scenario.path,
        ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # say why (a target not answering, a script error), not just that
        raise RuntimeError(f"wrk against {base} exited {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class StaleChecker(threading.Thread):
    """During S6: adjust one product of its own by +1, then read it back, through the target;
    a read that does not show the write is stale."""

    def __init__(self, base: str, headers: dict, product: str, location: str) -> None:
        super().__init__(daemon=True)
        self.base, self.headers = base, headers
        self.product, self.location = product, location
        self.stop = threading.Event()
        self.checks = 0
        self.stale = 0

    def run(self) -> None:
        prefix = self.base
        read = (
            f"{prefix}/stock_levels?select=on_hand"
            f"&product_id=eq.{self.product}&location_id=eq.{self.location}"
        )
        body = {
            "product_id": self.product,
            "location_id": self.location,
            "quantity_delta": 1,
            "reason": "check",
        }
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self.stop.is_set():
                after = client.post(prefix + "/rpc/adjust_stock", json=body).json()["on_hand"]
                seen = client.get(read).json()[0]["on_hand"]
                self.checks += 1
                if float(seen) != float(after):
                    self.stale += 1
