"""Scoring with a stored Ensemble state: same forecast as the trained ensemble, no backtest, unknown series."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import models.forecasting.ensemble as ensemble_module
import models.forecasting.evaluation as evaluation_module
from models.forecasting import ETS, Ensemble, ForecastInputError, SeasonalNaive, Theta
from models.forecasting.stored import EnsembleState, StoredEnsemble, ensemble_state
from tests.models.test_forecasting import make_series


def _members():
    return [SeasonalNaive(), ETS(), Theta()]


def _trained(df: pd.DataFrame) -> Ensemble:
    return Ensemble(members=_members(), backtest_h=10, n_windows=3, refit=True, min_group_size=2).fit(df, freq="D")


def _no_backtest(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("scoring ran a backtest")

    monkeypatch.setattr(ensemble_module, "backtest", refuse)
    monkeypatch.setattr(evaluation_module, "backtest", refuse)


def test_stored_state_reproduces_the_trained_forecast_without_a_backtest(monkeypatch):
    df = make_series(n_series=6, n_steps=90, ragged=False)
    trained = _trained(df)
    state = ensemble_state(trained)
    assert set(state.members) == {"SeasonalNaive", "ETS", "Theta"}
    assert set(state.calibration["calibrator"]) >= {"daily", "cumulative"}
    _no_backtest(monkeypatch)
    scored = StoredEnsemble(state, _members()).fit(df, freq="D")
    want, got = trained.predict(h=14, level=95), scored.predict(h=14, level=95)
    assert list(got.columns) == list(want.columns) and len(got) == 6 * 14
    np.testing.assert_allclose(got["yhat"], want["yhat"], rtol=1e-6)
    np.testing.assert_allclose(got["yhat_upper"], want["yhat_upper"], rtol=1e-6)
    cum_want, cum_got = trained.predict_cumulative(14, 80), scored.predict_cumulative(14, 80)
    np.testing.assert_allclose(cum_got["yhat_lower"], cum_want["yhat_lower"], rtol=1e-6)
    assert scored.unknown_ == []


def test_members_without_weight_are_not_fitted_and_unknown_series_get_default_weights():
    df = make_series(n_series=4, n_steps=90, ragged=False)
    state = ensemble_state(_trained(df))
    state.weights[state.members] = 0.0
    state.weights["ETS"] = 1.0  # every known series: ETS alone
    new = make_series(n_series=5, n_steps=90, ragged=False, seed=3)
    new.loc[new["unique_id"] == "s4", "unique_id"] = "brand-new"
    scored = StoredEnsemble(state, _members()).fit(new, freq="D")
    fc = scored.predict(h=7)
    assert scored.unknown_ == ["brand-new"]
    assert scored.fitted_members_ == {"ETS": 5}  # default weights = the mean stored mix = ETS
    assert (fc["yhat_lower"] <= fc["yhat"]).all() and (fc["yhat"] <= fc["yhat_upper"]).all()
    assert [f.unique_id for f in scored.fallbacks if f.used == "default weights"] == ["brand-new"]


def test_member_fitted_only_on_the_series_that_weigh_it():
    df = make_series(n_series=4, n_steps=90, ragged=False)
    state = ensemble_state(_trained(df))
    state.weights[state.members] = 0.0
    state.weights.loc[state.weights["unique_id"] == "s0", "Theta"] = 1.0
    state.weights.loc[state.weights["unique_id"] != "s0", "SeasonalNaive"] = 1.0
    scored = StoredEnsemble(state, _members()).fit(df, freq="D")
    assert scored.fitted_members_ == {"SeasonalNaive": 3, "Theta": 1}
    alone = Theta().fit(df[df["unique_id"] == "s0"], freq="D").predict(h=5)
    got = scored.predict(h=5)
    np.testing.assert_allclose(got[got["unique_id"] == "s0"]["yhat"], alone["yhat"], rtol=1e-6)


def test_missing_member_is_a_clear_error():
    df = make_series(n_series=3, n_steps=90, ragged=False)
    state = EnsembleState(ensemble_state(_trained(df)).weights, pd.DataFrame(columns=["calibrator", "step", "score"]),
                          {"members": ["SeasonalNaive", "ETS", "Theta"], "calibrators": {}})
    with pytest.raises(ForecastInputError, match="training configuration"):
        StoredEnsemble(state, [SeasonalNaive()]).fit(df, freq="D")
