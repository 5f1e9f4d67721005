"""Forecast benchmark: NIMBUS's demand forecast against statsforecast on synthetic daily series.

Needs statsforecast: `.venv/bin/pip install -e ".[bench]"` (`make bench` does it).
Usage: .venv/bin/python bench/forecast.py [--replicates 5] [--origins 4] [--horizon 28]
                                          [--database-url URL] [--sql-dir DIR] [--n-jobs 1]
                                          [--api-database URL [--runs 20]]

Six kinds of daily demand (smooth, trending, weekly seasonal, intermittent, lumpy, slow mover),
`--replicates` series of each from fixed seeds, 365 days of history before the first of
`--origins` rolling origins `--horizon` days apart. At each origin every method sees the days
before it and forecasts the next `--horizon`; the error is MASE (mean absolute error over the
horizon / the training days' mean absolute day-to-day change) and RMSSE (the same with squares,
as in M5, where a zero forecast cannot win on intermittent series), averaged over origins and
replicates per kind. NIMBUS is private.forecast_demand (the model demand_forecast uses), called
in SQL on a scratch database migrated from sql/ (created and dropped here unless
--database-url names one already migrated). Every forecast, statsforecast's included, is
clamped at 0 as NIMBUS clamps its own (demand is never negative). Prints a table per metric:
each model's mean per kind, the best statsforecast model, NIMBUS / best, and NIMBUS's chosen
models; target NIMBUS <= 1.10 x best on every kind (exit status 1 when MASE misses it).
With --api-database, first times public.demand_forecast there as the largest organization's
owner (its total and three products).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.local.migrate import migrate  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HISTORY = 365
KINDS = ("smooth", "trending", "weekly seasonal", "intermittent", "lumpy", "slow mover")


def synthetic(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """One daily series of whole units of the given kind (never negative)."""
    t = np.arange(length)
    if kind == "smooth":
        level = 40 + np.cumsum(rng.normal(0, 0.4, length))
        y = level + rng.normal(0, 5, length)
    elif kind == "trending":
        y = 15 + 0.06 * t + np.cumsum(rng.normal(0, 0.2, length)) + rng.normal(0, 4, length)
    elif kind == "weekly seasonal":
        week = np.array([0.7, 0.8, 0.9, 1.0, 1.2, 1.6, 0.8])[(t + rng.integers(7)) % 7]
        y = 30 * week + np.cumsum(rng.normal(0, 0.2, length)) + rng.normal(0, 3, length)
    elif kind == "intermittent":
        y = (rng.random(length) < 0.3) * (1 + rng.poisson(3, length))
    elif kind == "lumpy":
        y = (rng.random(length) < 0.12) * np.ceil(rng.lognormal(2.3, 0.9, length))
    elif kind == "slow mover":
        y = rng.poisson(0.15, length)
    else:
        raise ValueError(kind)
    return np.maximum(np.round(y), 0).astype(float)


def mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray) -> float:
    """MAE of the forecast over the in-sample mean absolute one-step naive error."""
    scale = np.mean(np.abs(np.diff(train)))
    return float(np.mean(np.abs(actual - np.maximum(forecast, 0))) / scale)


def rmsse(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray) -> float:
    """Root mean squared error over the in-sample root mean squared one-step naive error (M5)."""
    scale = np.mean(np.diff(train) ** 2)
    return float(np.sqrt(np.mean((actual - np.maximum(forecast, 0)) ** 2) / scale))


METRICS = {"MASE": mase, "RMSSE": rmsse}


def statsforecast_models():
    """The statsforecast models compared: automatic ones, baselines, intermittent methods."""
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        AutoARIMA,
        AutoETS,
        AutoTheta,
        CrostonClassic,
        CrostonOptimized,
        CrostonSBA,
        HistoricAverage,
        Naive,
        SeasonalNaive,
        WindowAverage,
    )

    return [
        AutoETS(season_length=7),
        AutoARIMA(season_length=7),
        AutoTheta(season_length=7),
        SeasonalNaive(season_length=7),
        Naive(),
        HistoricAverage(),
        WindowAverage(window_size=28),
        CrostonClassic(),
        CrostonOptimized(),
        CrostonSBA(),
        TSB(alpha_d=0.1, alpha_p=0.1),
        ADIDA(),
        IMAPA(),
    ]


def run_statsforecast(series: dict, origins: int, horizon: int, n_jobs: int) -> dict:
    """Mean MASE and RMSSE per (metric, series id, model) over rolling origins
    (statsforecast's cross-validation, refitted at each origin)."""
    from statsforecast import StatsForecast

    frames = [
        pd.DataFrame({"unique_id": sid, "ds": pd.date_range("2024-01-01", periods=len(y)), "y": y})
        for sid, y in series.items()
    ]
    sf = StatsForecast(models=statsforecast_models(), freq="D", n_jobs=n_jobs)
    cv = sf.cross_validation(
        df=pd.concat(frames), h=horizon, n_windows=origins, step_size=horizon, refit=True
    )
    names = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    out: dict = {}
    for (sid, cutoff), g in cv.groupby(["unique_id", "cutoff"]):
        y = series[sid]
        start = (pd.Timestamp(cutoff) - pd.Timestamp("2024-01-01")).days + 1
        for name in names:
            for metric, score in METRICS.items():
                value = score(g["y"].to_numpy(), g[name].to_numpy(), y[:start])
                out.setdefault((metric, sid, name), []).append(value)
    return {k: statistics.fmean(v) for k, v in out.items()}


def run_nimbus(url: str, series: dict, origins: int, horizon: int) -> tuple[dict, dict, list]:
    """Mean MASE and RMSSE per (metric, series id) of private.forecast_demand, the models it
    chose, the time of each call."""
    scores: dict = {}
    chosen: dict = {}
    times: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for sid, y in series.items():
            for k in range(origins):
                start = len(y) - (origins - k) * horizon
                began = time.perf_counter()
                (fit,) = conn.execute(
                    "select private.forecast_demand(%s::float8[], %s)",
                    (y[:start].tolist(), horizon),
                ).fetchone()
                times.append(time.perf_counter() - began)
                forecast = np.array([float(v) for v in fit["daily_units"]])
                for metric, score in METRICS.items():
                    value = score(y[start : start + horizon], forecast, y[:start])
                    scores.setdefault((metric, sid), []).append(value)
                chosen.setdefault(sid, []).append(fit["model"])
    return {k: statistics.fmean(v) for k, v in scores.items()}, chosen, times


def scratch_database(sql_dir: Path) -> str:
    """Create and migrate a scratch database; return its URL."""
    name = f"nimbus_bench_forecast_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN, dbname=name)
    migrate(url, sql_dir=sql_dir, echo=lambda _line: None)
    return url


def drop_database(url: str) -> None:
    """Drop the scratch database."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        drop = sql.SQL("drop database if exists {} with (force)")
        conn.execute(drop.format(sql.Identifier(name)))


def time_api(url: str, runs: int) -> None:
    """Time public.demand_forecast as the owner of the largest organization, as PostgREST
    calls it: the organization's total and three products (most, median and fewest sales days)."""
    with psycopg.connect(url, autocommit=True) as conn:
        org, owner = conn.execute(
            "select o.id, m.user_id from public.organizations as o"
            " join public.memberships as m on m.organization_id = o.id and m.role = 'owner'"
            " order by (select count(*) from public.products as p"
            " where p.organization_id = o.id) desc limit 1"
        ).fetchone()
        ranked = [
            r[0]
            for r in conn.execute(
                "select product_id from private.daily_sales where organization_id = %s"
                " group by product_id order by count(distinct day) desc, product_id",
                (org,),
            )
        ]
        cases = {
            "organization total": None,
            "product, most sales days": ranked[0],
            "product, median sales days": ranked[len(ranked) // 2],
            "product, fewest sales days": ranked[-1],
        }
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (f'{{"sub": "{owner}", "role": "authenticated"}}',),
        )
        conn.execute("set role authenticated")
        print(f"\npublic.demand_forecast(product, 30) on {url.rsplit('/', 1)[-1]}, {runs} runs")
        print("| case | median ms | p95 ms | model | mase | history days |")
        print("| --- | ---: | ---: | --- | ---: | ---: |")
        for name, product in cases.items():
            spent = []
            for _ in range(runs + 2):
                began = time.perf_counter()
                (fit,) = conn.execute(
                    "select public.demand_forecast(%s::uuid, 30)", (product,)
                ).fetchone()
                spent.append((time.perf_counter() - began) * 1000)
            spent = sorted(spent[2:])
            p95 = spent[min(len(spent) - 1, round(0.95 * (len(spent) - 1)))]
            model = fit.get("model", fit["method"])  # a database without issue 16: method
            print(
                f"| {name} | {statistics.median(spent):.1f} | {p95:.1f} | {model}"
                f" | {fit['mase']} | {fit['history_days']} |"
            )
        conn.execute("reset role")


def main() -> int:
    """Generate the series, run both sides, print the table; exit 1 if a kind misses 10%."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=5)
    parser.add_argument("--origins", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--database-url", help="an already migrated database (else a scratch one)")
    parser.add_argument("--sql-dir", type=Path, default=ROOT / "sql")
    parser.add_argument(
        "--api-database",
        help="also time public.demand_forecast on this seeded, migrated database (e.g. large)",
    )
    parser.add_argument("--runs", type=int, default=20, help="timed calls per --api-database case")
    args = parser.parse_args()
    if args.api_database:
        time_api(args.api_database, args.runs)

    length = HISTORY + args.origins * args.horizon
    series = {}
    for i, kind in enumerate(KINDS):
        for r in range(args.replicates):
            rng = np.random.default_rng([args.seed, i, r])
            series[f"{kind}#{r}"] = synthetic(kind, length, rng)

    url = args.database_url or scratch_database(args.sql_dir)
    try:
        began = time.perf_counter()
        nimbus, chosen, times = run_nimbus(url, series, args.origins, args.horizon)
        nimbus_s = time.perf_counter() - began
    finally:
        if not args.database_url:
            drop_database(url)
    began = time.perf_counter()
    theirs = run_statsforecast(series, args.origins, args.horizon, args.n_jobs)
    theirs_s = time.perf_counter() - began

    aliases = [m.alias for m in statsforecast_models()]
    names = sorted({name for _, _, name in theirs}, key=aliases.index)
    missed = {}
    for metric in METRICS:
        missed[metric] = table(metric, series, nimbus, theirs, names, chosen)
    calls = sorted(times)
    print(
        f"\n{len(series)} series x {args.origins} origins x {args.horizon} days;"
        f" NIMBUS {nimbus_s:.1f} s (per call median {statistics.median(calls) * 1000:.1f} ms,"
        f" max {calls[-1] * 1000:.1f} ms); statsforecast {theirs_s:.1f} s"
    )
    for metric, kinds in missed.items():
        verdict = "met" if not kinds else "missed on " + ", ".join(kinds)
        print(f"target NIMBUS <= 1.10 x best statsforecast {metric} on every kind: {verdict}")
    return 1 if missed["MASE"] else 0


def table(metric: str, series: dict, nimbus: dict, theirs: dict, names: list, chosen: dict):
    """Print one metric's table (mean per kind); return the kinds where NIMBUS misses 10%."""
    header = ["series", "NIMBUS", *names, "best statsforecast", "NIMBUS / best", "NIMBUS chose"]
    print(f"\nMean {metric} (lower is better)\n")
    print("| " + " | ".join(header) + " |")
    print("| --- " + "| ---: " * (len(header) - 2) + "| --- |")
    missed = []
    for kind in KINDS:
        ids = [sid for sid in series if sid.split("#")[0] == kind]
        ours = statistics.fmean(nimbus[(metric, s)] for s in ids)
        per_model = {n: statistics.fmean(theirs[(metric, s, n)] for s in ids) for n in names}
        best = min(per_model, key=per_model.get)
        ratio = ours / per_model[best]
        if ratio > 1.10:
            missed.append(kind)
        picks = Counter(m for s in ids for m in chosen[s])
        cells = [kind, f"**{ours:.3f}**", *(f"{per_model[n]:.3f}" for n in names)]
        cells += [f"{best} {per_model[best]:.3f}", f"{ratio:.2f}"]
        cells.append(", ".join(f"{m} {c}" for m, c in picks.most_common()))
        print("| " + " | ".join(cells) + " |")
    return missed


if __name__ == "__main__":
    sys.exit(main())
