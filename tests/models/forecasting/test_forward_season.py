"""A state fitted on one window and forwarded on a later one (``refit=False``) keeps the weekly profile in place,
also when the history is longer than ``max_history`` and the windows' ends are not whole weeks apart."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecasting import ETS, DampedETS

PROFILE = np.array([10, 12, 14, 16, 18, 3, 2.0])


@pytest.mark.parametrize("member", [ETS, DampedETS])
def test_forwarding_past_the_history_cap_keeps_the_weekly_profile(member):
    rng = np.random.default_rng(1)
    n = 600  # > 52 weeks: the histories are capped
    y = np.tile(PROFILE, n // 7 + 1)[:n] * rng.lognormal(0, 0.1, n)
    frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=n), "y": y})
    model = member().fit(frame.iloc[:450])
    model._fit_panel(model.panel_.__class__.from_frame(frame.iloc[:480], "D", "zero"), forward=True)  # +30 days
    forwarded = model.predict(7)["yhat"].to_numpy()
    truth = np.tile(PROFILE, 100)[480:487]
    # shifted by two days, as before the fix, the error would be about 8 credits a day
    assert np.abs(forwarded - truth).mean() < 1.0
