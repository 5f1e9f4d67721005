"""Demand forecast models (issue 16): optimised parameters, trend, weekly season, intermittent
demand, selection on a hold-out by MASE, and what demand_forecast answers."""

from __future__ import annotations

import math
import random

import pytest

from tests.sql.test_analytics import call, tenants  # noqa: F401  (module fixture reused)

SEASONAL = ("seasonal", "holt_winters_damped")
TRENDING = ("holt_damped", "holt_winters_damped")
INTERMITTENT = ("sba", "tsb")


def weekly(days: int = 365, seed: int = 1) -> list[float]:
    """Demand with a strong weekly profile (weekends busy) and noise."""
    rng = random.Random(seed)
    profile = (0.7, 0.8, 0.9, 1.0, 1.2, 1.6, 0.8)
    return [round(max(0.0, 30 * profile[t % 7] + rng.gauss(0, 2))) for t in range(days)]


def trending(days: int = 365, seed: int = 2) -> list[float]:
    """Demand growing by 0.1 unit a day, with noise."""
    rng = random.Random(seed)
    return [round(max(0.0, 10 + 0.1 * t + rng.gauss(0, 2))) for t in range(days)]


def intermittent(days: int = 365, seed: int = 3) -> list[float]:
    """Demand on about one day in four, of 1 to 6 units."""
    rng = random.Random(seed)
    return [float(rng.randint(1, 6)) if rng.random() < 0.25 else 0.0 for _ in range(days)]


def forecast(db, series: list[float], horizon: int = 28) -> dict:
    """private.forecast_demand of a series."""
    return db.execute(
        "select private.forecast_demand(%s::float8[], %s)", (series, horizon)
    ).fetchone()[0]


def holdout_mase(series: list[float], predicted: list[float], holdout: int = 28) -> float:
    """MASE of a forecast of the last `holdout` days, scaled by the earlier days' naive error."""
    train, actual = series[:-holdout], series[-holdout:]
    scale = sum(abs(a - b) for a, b in zip(train[1:], train[:-1], strict=True)) / (len(train) - 1)
    return sum(abs(a - p) for a, p in zip(actual, predicted, strict=True)) / holdout / scale


def test_seasonal_series_picks_a_seasonal_model_and_beats_flat(db) -> None:
    """A weekly profile selects a seasonal model whose forecast follows the week, beating SES."""
    series = weekly()
    fit = forecast(db, series, 14)
    assert fit["model"] in SEASONAL
    units = [float(u) for u in fit["daily_units"]]
    assert len(units) == 14 and max(units) - min(units) > 10
    # The busiest forecast day is the busy weekday of the profile (index 5 of each week).
    assert (len(series) + units.index(max(units))) % 7 == 5
    candidates = {c["model"]: float(c["mase"]) for c in fit["candidates"]}
    assert float(fit["mase"]) == min(candidates.values())
    assert float(fit["mase"]) < 0.6 * candidates["ses"]
    # Against a flat forecast at the training mean, on the same hold-out.
    train = series[:-28]
    flat = holdout_mase(series, [sum(train) / len(train)] * 28)
    assert float(fit["mase"]) < 0.5 * flat


def test_trending_series_picks_a_trend(db) -> None:
    """A steady rise selects a (damped) trend model whose forecast keeps rising."""
    fit = forecast(db, trending())
    assert fit["model"] in TRENDING
    assert float(fit["params"]["beta"]) > 0
    assert 0.8 <= float(fit["params"]["phi"]) <= 0.98
    units = [float(u) for u in fit["daily_units"]]
    assert units[-1] > units[0]
    candidates = {c["model"]: float(c["mase"]) for c in fit["candidates"]}
    assert candidates[fit["model"]] < candidates["ses"]


def test_intermittent_series_picks_sba_or_tsb(db) -> None:
    """Demand on one day in four is intermittent: SBA or TSB, a flat rate near the mean."""
    series = intermittent()
    fit = forecast(db, series)
    assert fit["intermittent"] is True
    assert fit["model"] in INTERMITTENT
    assert {c["model"] for c in fit["candidates"]} == set(INTERMITTENT)
    rate = sum(series) / len(series)
    assert float(fit["daily_forecast"]) == pytest.approx(rate, rel=0.35)
    assert len({float(u) for u in fit["daily_units"]}) == 1
    assert fit["expected_model"] == fit["model"]
    assert fit["expected_daily"] == fit["daily_forecast"]


def slow_mover(days: int = 365, seed: int = 6) -> list[float]:
    """One unit on about one day in seven (a Poisson 0.15 a day, as bench/forecast.py)."""
    rng = random.Random(seed)
    return [float(sum(rng.random() < 0.15 / 8 for _ in range(8))) for _ in range(days)]


def test_very_sparse_series_may_forecast_its_median_and_keeps_the_mean(db) -> None:
    """Demand on one day in five or fewer: the median (0) competes on the hold-out and wins on
    absolute error, as every day's most likely demand is 0; the mean to plan stock with stays
    in expected_daily, from the best mean model (what reorder points are made of)."""
    series = slow_mover()
    fit = forecast(db, series)
    assert {c["model"] for c in fit["candidates"]} == {"sba", "tsb", "median"}
    maes = {c["model"]: float(c["mae"]) for c in fit["candidates"]}
    assert fit["model"] == "median" and maes["median"] == min(maes.values())
    assert {float(u) for u in fit["daily_units"]} == {0.0}
    assert float(fit["horizon_total"]) == 0
    assert fit["expected_model"] in INTERMITTENT
    assert maes[fit["expected_model"]] == min(maes["sba"], maes["tsb"])
    rate = sum(series) / len(series)
    assert float(fit["expected_daily"]) == pytest.approx(rate, rel=0.35)
    assert float(fit["expected_total"]) == pytest.approx(28 * float(fit["expected_daily"]), 0.01)
    assert float(fit["expected_rmse"]) > 0
    # Denser intermittent demand (one day in four) is not offered the median.
    denser = forecast(db, intermittent())
    assert "median" not in {c["model"] for c in denser["candidates"]}


def test_parameters_are_optimised(db) -> None:
    """Fitted alphas follow the data, not the old fixed 0.2: a random walk's high, noise's low."""
    rng = random.Random(4)
    walk, noise, level = [], [], 100.0
    for _ in range(200):
        level += rng.gauss(0, 5)
        walk.append(level + rng.gauss(0, 0.5))
        noise.append(50 + rng.gauss(0, 5))
    fast = db.execute(
        "select (private.demand_model_fit(%s::float8[], 'ses', 7)).params", (walk,)
    ).fetchone()[0]
    slow = db.execute(
        "select (private.demand_model_fit(%s::float8[], 'ses', 7)).params", (noise,)
    ).fetchone()[0]
    assert float(fast["alpha"]) > 0.7
    assert float(slow["alpha"]) < 0.1

    # The optimum is a minimum: the fitted SSE is below that of alpha 0.2 and of its neighbours.
    def sse(values, alpha):
        return db.execute(
            "select (private.ets_filter(%s::float8[], %s, 0, 0, 1, false, false, 0)).sse",
            (values, alpha),
        ).fetchone()[0]

    for values, fitted in ((walk, fast), (noise, slow)):
        alpha = float(fitted["alpha"])
        best = sse(values, alpha)
        assert best < sse(values, 0.2)
        assert best <= sse(values, min(alpha * 1.2, 0.9999)) * (1 + 1e-6)
        assert best <= sse(values, alpha * 0.8) * (1 + 1e-6)


def test_ses_filter_matches_python(db) -> None:
    """ETS(A,N,N) in SQL: the level starts at the first four weeks' mean; SSE and forecast agree."""
    series = [10 + (i * 37 % 11) - 5 for i in range(90)]
    alpha = 0.3
    level, sse = sum(series[:28]) / 28, 0.0
    for v in series:
        sse += (v - level) ** 2
        level += alpha * (v - level)
    got_sse, got = db.execute(
        "select f.sse, f.forecast"
        " from private.ets_filter(%s::float8[], %s, 0, 0, 1, false, false, 3) as f",
        (series, alpha),
    ).fetchone()
    assert got_sse == pytest.approx(sse)
    assert got == pytest.approx([level] * 3)


def test_tsb_filter_matches_python(db) -> None:
    """TSB in SQL: probability and size smoothed as in Python, forecast probability x size."""
    series = intermittent(120, seed=5)
    alpha, beta = 0.2, 0.1
    sizes = [v for v in series if v > 0]
    chance, size, sse = len(sizes) / len(series), sum(sizes) / len(sizes), 0.0
    for v in series:
        sse += (v - chance * size) ** 2
        if v > 0:
            chance += beta * (1 - chance)
            size += alpha * (v - size)
        else:
            chance -= beta * chance
    got_sse, got = db.execute(
        "select f.sse, f.forecast"
        " from private.intermittent_filter(%s::float8[], 'tsb', %s, %s, 2) as f",
        (series, alpha, beta),
    ).fetchone()
    assert got_sse == pytest.approx(sse)
    assert got == pytest.approx([chance * size] * 2)


def test_edge_series(db) -> None:
    """No demand forecasts 0 (model zero); a short or constant series still answers, finitely."""
    zero = forecast(db, [0.0] * 60, 7)
    assert zero["model"] == "zero" and float(zero["horizon_total"]) == 0
    assert float(zero["mase"]) == 0
    short = forecast(db, [3.0, 5.0, 4.0], 5)
    assert short["model"] == "ses" and short["holdout_days"] == 0 and short["mase"] is None
    assert len(short["daily_units"]) == 5
    constant = forecast(db, [7.0] * 120, 14)
    assert float(constant["daily_forecast"]) == pytest.approx(7)
    assert float(constant["mase"]) == 0
    empty = forecast(db, [], 3)
    assert empty["model"] == "zero" and empty["daily_units"] == [0, 0, 0]


def test_demand_forecast_answers_model_and_mase(db, tenants) -> None:  # noqa: F811
    """The RPC keeps its keys and adds the chosen model and its hold-out MASE, per product and
    for the organization; one forecast day per horizon day, summing to horizon_total."""
    (busy,) = db.execute(
        "select product_id::text from private.daily_sales where organization_id = %s"
        " group by product_id order by count(*) desc, product_id limit 1",
        (tenants["a"],),
    ).fetchone()
    keys = {
        "as_of", "organization_id", "product_id", "history_from", "history_to", "horizon_days",
        "forecast", "method", "alpha", "history_days", "zero_demand_share", "daily_forecast",
        "horizon_total", "holdout_days", "mae", "mase", "model", "params", "candidates",
    }  # fmt: skip
    for product in (busy, None):
        result = call(db, tenants["user_a"], "select public.demand_forecast(%s::uuid, 21)", product)
        assert keys <= set(result)
        assert result["model"] == result["method"]
        assert result["model"] in {c["model"] for c in result["candidates"]}
        assert math.isfinite(float(result["mase"])) and result["holdout_days"] == 28
        assert len(result["forecast"]) == 21
        total = sum(float(f["units"]) for f in result["forecast"])
        assert total == pytest.approx(float(result["horizon_total"]), abs=0.01)
