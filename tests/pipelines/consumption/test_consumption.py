"""Consumption pipeline pieces: reconciliation, sharding and holdout metrics."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipelines.consumption.evaluation import merge_importance, series_metrics, summarize
from core.shards import shard_of
from pipelines.consumption.forecast import model_importance, reconcile


def _frames(seed: int = 0):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-07-01", periods=10, freq="D")
    total = pd.DataFrame({"workspace_id": "w", "ds": ds, "yhat": rng.uniform(50, 100, 10)})
    total["yhat_lower"], total["yhat_upper"] = total["yhat"] * 0.7, total["yhat"] * 1.3
    parts = []
    for f, scale in (("chat", 30.0), ("api", 10.0), ("search", 0.0)):
        y = rng.uniform(0.5, 1.5, 10) * scale
        parts.append(pd.DataFrame({"workspace_id": "w", "feature": f, "ds": ds, "yhat": y,
                                   "yhat_lower": y * 0.5, "yhat_upper": y * 1.5}))
    return total, pd.concat(parts, ignore_index=True)


def test_breakdown_sums_to_total_and_keeps_bounds_ordered():
    total, bottom = _frames()
    rec = reconcile(total, bottom)
    sums = rec.groupby("ds")["yhat"].sum().to_numpy()
    np.testing.assert_allclose(sums, total["yhat"].to_numpy(), rtol=1e-9)
    assert (rec["yhat_lower"] <= rec["yhat"]).all() and (rec["yhat"] <= rec["yhat_upper"]).all()
    assert (rec.loc[rec["feature"] == "search", "yhat"] == 0).all()
    assert len(rec) == len(bottom)


def test_all_zero_feature_forecasts_split_the_total_evenly():
    total, bottom = _frames()
    bottom[["yhat", "yhat_lower", "yhat_upper"]] = 0.0
    rec = reconcile(total, bottom)
    np.testing.assert_allclose(rec.groupby("ds")["yhat"].sum().to_numpy(), total["yhat"].to_numpy())
    np.testing.assert_allclose(rec.groupby("ds")["yhat"].std().to_numpy(), 0, atol=1e-9)


def test_shards_are_stable_across_processes_and_cover_all():
    """Pinned values: a switch to Python's per-process salted ``hash()`` (or another hash) would move
    workspaces between shards from one worker to the next."""
    assert [shard_of(f"ws-{i:04d}", 4) for i in range(1, 9)] == [3, 2, 0, 1, 0, 3, 1, 3]
    assert shard_of("acme", 16) == 1
    code = "from core.shards import shard_of; print([shard_of(f'ws-{i:04d}', 4) for i in range(200)])"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1 and set(eval(runs.pop())) == {0, 1, 2, 3}


def test_holdout_metrics_and_pooled_coverage():
    ds = pd.date_range("2026-01-01", periods=40, freq="D")
    hist = pd.DataFrame({"unique_id": "a", "ds": ds[:30], "y": np.tile([1.0, 2.0], 15)})
    actual = pd.DataFrame({"unique_id": "a", "ds": ds[30:], "y": 2.0})
    fc = actual.drop(columns="y").assign(yhat=1.0, **{"lo-80": 0.0, "hi-80": 1.5, "lo-95": 0.0, "hi-95": 3.0})
    per = series_metrics(actual, {"m": fc}, hist)
    row = per.iloc[0]
    assert row["wape"] == pytest.approx(0.5) and row["mase"] == pytest.approx(1.0)
    assert row["coverage_80"] == 0 and row["coverage_95"] == 1
    s = summarize(per).iloc[0]
    assert s["pooled_wape"] == pytest.approx(0.5) and s["coverage_95"] == 1
    assert s["pooled_period_err"] == pytest.approx(0.5)  # 10 days of 1.0 against 10 days of 2.0


def test_importance_of_a_fitted_ensemble_and_shard_average():
    from models.forecasting import Ensemble, GlobalGBM, SeasonalNaive

    rng = np.random.default_rng(1)
    ds = pd.date_range("2026-01-01", periods=120, freq="D")
    df = pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds,
                                  "y": 50 + 20 * (ds.dayofweek < 5) + rng.normal(0, 3, len(ds))}) for i in range(4)])
    gbm_only = model_importance(Ensemble(members=[GlobalGBM(n_estimators=30, n_jobs=1)], backtest_h=14,
                                         n_windows=2).fit(df))
    assert gbm_only["ensemble_member_weights"] == {"GlobalGBM": 1.0}
    assert sum(gbm_only["global_gbm_total_gain"].values()) == pytest.approx(1.0)
    naive_only = model_importance(Ensemble(members=[SeasonalNaive()], backtest_h=14, n_windows=2).fit(df))
    assert naive_only == {"ensemble_member_weights": {"SeasonalNaive": 1.0}}  # no GBM, no gain

    merged = merge_importance([(3, {"w": {"a": 1.0, "b": 0.0}}), (1, {"w": {"a": 0.0, "b": 1.0}, "g": {"x": 1.0}})])
    assert merged == {"g": {"x": 1.0}, "w": {"a": 0.75, "b": 0.25}}
