"""Stored model specifications: members that search a model per series (AutoETS's model string in ETS and MSTL's
trend, AutoARIMA's orders) report the one they chose, fit it again without the search, fall back to the search
when it no longer fits, and a StoredEnsemble fits the state's specifications."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from models.forecasting import ARIMA, ETS, MSTL, DampedETS, Ensemble, SeasonalNaive, Theta
from models.forecasting.robust import Robust
from models.forecasting.stored import StoredEnsemble, empty_specs, ensemble_state, member_specs
from tests.models.test_forecasting import make_series

ETS_SPEC = re.compile(r"^[AM][NA][NA][ND]$")


def _refuse_search(monkeypatch, cls) -> None:
    def search(*args, **kwargs):
        raise AssertionError(f"{cls.__name__} searched although its specification was given")

    monkeypatch.setattr(cls, "_fit_one", search)


def test_searching_members_report_their_chosen_specification():
    df = make_series(n_series=4, n_steps=120, ragged=False)
    ets = ETS().fit(df)
    assert set(ets.fitted_specs()) == set(df["unique_id"])
    assert all(ETS_SPEC.match(s) for s in ets.fitted_specs().values())
    trend = MSTL().fit(df).fitted_specs()
    assert len(trend) == 4 and all(ETS_SPEC.match(s) and s[2] == "N" for s in trend.values())
    auto = ARIMA(auto=True).fit(df).fitted_specs()
    assert len(auto) == 4 and all(len(s.split(",")) == 8 for s in auto.values())
    assert Robust(ETS()).fit(df).fitted_specs() == ets.fitted_specs()  # the wrapper passes them through
    for fixed in (ARIMA(), DampedETS(), Theta(), SeasonalNaive()):  # one model each: nothing searched
        assert fixed.fit(df).fitted_specs() == {}


@pytest.mark.parametrize("make, cls", [(lambda: ETS(n_jobs=2), ETS), (lambda: MSTL(), MSTL),
                                       (lambda: ARIMA(auto=True), ARIMA)])
def test_a_stored_specification_is_fitted_without_the_search_and_forecasts_alike(make, cls, monkeypatch):
    df = make_series(n_series=16, n_steps=120, ragged=False)  # 16 series with n_jobs=2: the worker processes
    searched = make().fit(df)
    specs = searched.fitted_specs()
    _refuse_search(monkeypatch, cls)
    fixed = make().set_specs(specs).fit(df)
    assert fixed.fallbacks == [] and fixed.fitted_specs() == specs
    want, got = searched.predict(h=14, level=95), fixed.predict(h=14, level=95)
    np.testing.assert_allclose(got[["yhat", "yhat_lower", "yhat_upper"]], want[["yhat", "yhat_lower", "yhat_upper"]],
                               rtol=1e-6)


def test_a_specification_that_no_longer_fits_falls_back_to_the_search():
    df = make_series(n_series=2, n_steps=120, ragged=False)
    df.loc[df.index[df["unique_id"] == "s0"][-5], "y"] = 0.0  # multiplicative errors cannot fit a zero
    ets = ETS().set_specs({"s0": "MNAN", "s1": "ANAN", "unknown": "MNAN"}).fit(df)
    assert ets.fallbacks == []
    assert ets.fitted_specs()["s0"].startswith("A") and ets.fitted_specs()["s1"] == "ANAN"
    with pytest.raises(Exception, match="ETS specification"):
        ETS().set_specs({"s0": "ZNA"})._fit_spec_one(np.ones(30), pd.Timestamp("2025-01-01"), "D", "ZNA")


def test_stored_ensemble_fits_the_state_specifications(monkeypatch):
    df = make_series(n_series=6, n_steps=120, ragged=False)
    members = lambda: [SeasonalNaive(), ETS(), Theta()]  # noqa: E731
    trained = Ensemble(members=members(), backtest_h=10, n_windows=2, refit=True, min_group_size=2).fit(df)
    state = ensemble_state(trained)
    assert set(state.specs["member"]) <= {"ETS"} and list(state.specs.columns) == ["unique_id", "member", "spec"]
    state.weights[state.members] = 0.0
    state.weights["ETS"] = 1.0  # every series on ETS, with the specification an ETS fit chose
    state.specs = member_specs([ETS().fit(df)])
    without = type(state)(state.weights, state.calibration, state.meta, empty_specs())  # as a format-1 artifact
    searched = StoredEnsemble(without, members()).fit(df)
    assert searched.fixed_specs_ == {}
    _refuse_search(monkeypatch, ETS)
    scored = StoredEnsemble(state, members()).fit(df)
    assert scored.fixed_specs_ == {"ETS": 6} and scored.fitted_members_ == {"ETS": 6}
    pd.testing.assert_frame_equal(scored.predict(h=10, level=80), searched.predict(h=10, level=80), rtol=1e-6)
