"""Scoring a PeakForecaster's stored state: the same forecasts and paths as the trained model on its own data,
no backtest, and a documented fallback for series the state does not know."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.peaks import PeakForecaster
from models.peaks.stored import HOUR_COLUMNS, PeakState, StoredPeakForecaster, peak_state


def _hourly(n: int = 12, weeks: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2025-01-06", periods=weeks * 7 * 24, freq="h")
    frames = [pd.DataFrame({"unique_id": f"w{i:02d}", "ds": ds,
                            "y": rng.poisson(3 + 25 * ((ds.hour - i) % 24 == 11) + i, len(ds)).astype(float)})
              for i in range(n)]
    frames.append(pd.DataFrame({"unique_id": "short", "ds": ds[-200:], "y": 2.0}))  # < 2 weeks: daily profile
    return pd.concat(frames, ignore_index=True)


def test_stored_state_reproduces_the_trained_forecast_and_paths_without_backtests(monkeypatch):
    df = _hourly()
    model = PeakForecaster(n_paths=60).fit(df)
    state = peak_state(model)
    assert set(state.choices["unique_id"]) == set(model.ids_) and list(state.blocks.columns[2:]) == HOUR_COLUMNS
    assert not state.blocks[HOUR_COLUMNS].isna().any().any()
    monkeypatch.setattr(PeakForecaster, "_choose", lambda *a, **k: pytest.fail("scoring backtested"))
    stored = StoredPeakForecaster(n_paths=60, state=state).fit(df)
    point, stored_point = model.point_forecast(120), stored.point_forecast(120)
    np.testing.assert_array_equal(point, stored_point)
    np.testing.assert_array_equal(model.sample_paths(120, point), stored.sample_paths(120, stored_point))
    assert stored.unknown_ == [] and [f.unique_id for f in stored.fallbacks] == ["short"]
    assert stored.weights()["choice"].tolist() == model.weights()["choice"].tolist()


def test_unknown_series_take_their_groups_choice_and_pool():
    df = _hourly()
    state = peak_state(PeakForecaster(n_paths=40).fit(df))
    keep = state.choices["unique_id"] != "w03"
    partial = PeakState(choices=state.choices[keep], groups=state.groups,
                        blocks=state.blocks[state.blocks["unique_id"] != "w03"])
    stored = StoredPeakForecaster(n_paths=40, state=partial).fit(df)
    assert stored.unknown_ == ["w03"]
    i = list(stored.ids_).index("w03")
    group_choice = dict(zip(state.groups["group"], state.groups["choice"]))[stored.group_[i]]
    assert "+".join(stored.combos_[i]) == group_choice and stored.n_blocks_[i] == 0
    paths = stored.sample_paths(48)
    lo, hi = np.quantile(paths[i], [0.05, 0.95], axis=0)
    assert np.isfinite(paths).all() and (paths >= 0).all() and (hi >= lo).all() and (hi > lo).any()


def test_stored_choices_must_use_the_forecasters_members():
    df = _hourly(n=4)
    state = peak_state(PeakForecaster(n_paths=20).fit(df))
    state.choices["choice"] = state.choices["choice"].where(state.choices["choice"] == "DailyProfile", "MSTL")
    with pytest.raises(ValueError, match="training run's parameters"):
        StoredPeakForecaster(n_paths=20, state=state).fit(df)
