"""Sample paths and what is read off them: coherence, scenarios, milestones, goals (pure, seeded)."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from pipelines.growth.sample_paths import (
    ErrorBank,
    carried_over,
    coherent,
    extend,
    first_crossing,
    goal_projection,
    growth_per_30d,
    milestone,
    nice_thresholds,
    scenario_quantiles,
    simulate,
    size_groups,
    stable_seed,
)

AS_OF = date(2026, 6, 30)


def _bank(n: int = 60, h: int = 30, spread: float = 0.2, seed: int = 0) -> ErrorBank:
    rng = np.random.default_rng(seed)
    drift = rng.normal(0, spread, (n, 1, 1)) * np.linspace(0.1, 1, h)  # level errors that grow with the horizon
    noise = rng.normal(0, spread / 2, (n, 3, h))
    return ErrorBank(errors=drift + noise, group=np.array(["all"] * n, dtype=object))


def test_paths_are_coherent_integer_non_negative_and_seeded():
    yhat = np.array([[5.0] * 40, [30.0] * 40, [3.0] * 40])  # an incoherent forecast: MAU below DAU and WAU
    recent = np.array([[9.0] * 28, [20.0] * 28, [40.0] * 28])
    carried = carried_over(np.array([0, 0, 3, 10, 27]), 40)
    paths = simulate(yhat, _bank(), "all", 300, seed=1, recent=recent, carried=carried)
    assert paths.shape == (300, 3, 40)
    assert (paths >= 0).all() and np.array_equal(paths, np.rint(paths))
    assert (paths[:, 0] <= paths[:, 1]).all() and (paths[:, 1] <= paths[:, 2]).all()
    assert (paths[:, 1, :6] >= 9).all()  # WAU covers the realised DAU of the last days
    assert (paths[:, 2, :21] >= 20).all()  # MAU covers the realised WAU inside its window
    np.testing.assert_array_equal(paths, simulate(yhat, _bank(), "all", 300, seed=1, recent=recent, carried=carried))
    assert not np.array_equal(paths, simulate(yhat, _bank(), "all", 300, seed=2, recent=recent, carried=carried))


def test_scenarios_are_ordered_and_coherent_across_metrics():
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 50, (200, 3, 20)).astype(float)
    q = scenario_quantiles(coherent(raw))
    assert (np.diff(q, axis=0) >= 0).all()  # P2.5 <= P10 <= P50 <= P90 <= P97.5 every day
    assert (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()  # DAU <= WAU <= MAU in every scenario
    assert set(np.unique(q)) <= set(np.unique(coherent(raw)))  # each quantile is a path value


def test_zero_forecast_never_goes_negative():
    paths = simulate(np.zeros((3, 10)), _bank(spread=2.0), "all", 200, seed=0)
    assert (paths >= 0).all() and paths.dtype == float


def test_carried_over_users_age_out_of_wau_and_mau():
    c = carried_over(np.array([0, 1, 6, 27]), 30, mau_window=28)
    assert c[0].tolist()[:7] == [2, 2, 2, 2, 2, 1, 0]  # last active on T, T-1: in WAU through T+6, T+5
    assert c[1, 0] == 3 and c[1, 25] == 2 and c[1, 26] == 1 and c[1, 27] == 0


def test_extend_continues_error_paths_proportionally():
    e = np.arange(1, 11, dtype=float)[None, None]
    out = extend(e, 20)
    assert out.shape == (1, 1, 20) and out[0, 0, 9] == 10 and out[0, 0, 19] == pytest.approx(20)
    assert extend(e, 5).shape[-1] == 5


def test_nice_thresholds():
    assert nice_thresholds(0) == [1, 2]
    assert nice_thresholds(7) == [8, 10]
    assert nice_thresholds(29) == [30, 40]
    assert nice_thresholds(137) == [150, 200]
    assert nice_thresholds(750) == [1000, 1500]
    assert nice_thresholds(1234) == [1500, 2000]


def test_milestone_dates_and_probability():
    h = 30
    paths = np.tile(np.arange(1, h + 1, dtype=float), (10, 1)) * np.arange(1, 11)[:, None]  # path i grows by i/day
    m = milestone(paths, 50, AS_OF)
    steps = first_crossing(paths, 50)
    assert steps.tolist() == [np.inf, 25, 17, 13, 10, 9, 8, 7, 6, 5]
    assert m["probability"] == pytest.approx(0.9) and m["horizon_days"] == 30
    assert m["date_p10"] == AS_OF + timedelta(days=5) and m["date_p50"] == AS_OF + timedelta(days=9)
    assert m["date_p90"] == AS_OF + timedelta(days=25)
    never = milestone(paths, 10_000, AS_OF)
    assert never["probability"] == 0 and never["date_p10"] is None


def test_goal_projection_and_growth_rates():
    paths = np.tile(np.linspace(101, 130, 30), (100, 1)) + np.linspace(-20, 20, 100)[:, None]
    g = goal_projection(paths, current=100, target=140, due=AS_OF + timedelta(days=30), as_of=AS_OF)
    assert g["status"] == "projected" and 0 < g["probability_on_due_date"] <= g["probability_met"] < 1
    assert g["value_p10"] <= g["value_p50"] <= g["value_p90"]
    assert g["required_growth_30d"] == pytest.approx(0.40)
    assert g["projected_growth_30d"] == pytest.approx(g["value_p50"] / 100 - 1)
    assert growth_per_30d(0, 10, 30) is None and growth_per_30d(100, 121, 60) == pytest.approx(0.1)


def test_size_groups_and_pool_fallback():
    assert set(size_groups(np.arange(10))) == {"all"}
    groups = size_groups(np.arange(20, 200))
    assert set(groups) == {"size-1of3", "size-2of3", "size-3of3"}
    bank = ErrorBank(errors=np.zeros((40, 3, 5)), group=np.array(["a"] * 35 + ["b"] * 5, dtype=object))
    assert bank.pool("a").size == 35 and bank.pool("b").size == 40  # too few units: all of them
    assert stable_seed("growth", "ws-1") == stable_seed("growth", "ws-1") != stable_seed("growth", "ws-2")
