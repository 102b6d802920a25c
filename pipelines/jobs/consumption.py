"""Credit consumption for one workspace, on demand: the nightly forecast's steps 2-4 (``pipelines.consumption.
forecast``) on that workspace's feature rows only: an Ensemble with the nightly parameters on its daily credit
totals, one on its feature/service series reconciled top-down to the total, and the cumulative totals.

No holdout evaluation, MLflow run or registry entry: a job answers one question, the nightly run keeps the
model record. The same workspace, date and parameters give the same forecast (seeded members).
"""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from core.contracts import CREDITS, CREDITS_CUMULATIVE, TOTAL
from core.settings import Settings
from pipelines.consumption.forecast import ensemble_params, reconcile
from pipelines.features.builders import daily_series
from pipelines.features.store import load_daily_aggregates, read_daily

TABLES = ("workspace_total", "workspace_feature")


class NoHistoryError(ValueError):
    """The feature store holds too little of the workspace's history to forecast it."""


def store_last_day(settings: Settings) -> date:
    """The last day the feature store's daily aggregates hold (any workspace): the default as-of date."""
    months = sorted((settings.offline_store_dir / "daily" / "workspace_total").glob("month=*/part-0.parquet"))
    for path in reversed(months):  # the newest month with a row
        days = read_daily(path, "workspace_total").column("day").to_pandas()
        if len(days):
            return pd.Timestamp(days.max()).date()
    raise NoHistoryError(f"the feature store under {settings.offline_store_dir} holds no daily aggregates: "
                         "run the nightly features step (pae features --date D) first")


def forecast_workspace(settings: Settings, workspace: str, as_of: date, horizon: int, target_metric: str,
                       level: int, by_feature: bool = True) -> pd.DataFrame:
    """One workspace's forecast rows of ``target_metric`` for the ``horizon`` days after ``as_of``.

    Args:
        workspace: The workspace's id in the source data (the feature store's key).
        target_metric: ``credits`` (the total, and per feature/service when ``by_feature``) or
            ``credits_cumulative``.

    Returns:
        Rows for the publisher: workspace_id, target_metric, dimension, prediction_date, predicted_value,
        confidence_lower, confidence_upper, confidence_level.

    Raises:
        NoHistoryError: The workspace has fewer than ``forecast_min_history_days`` days in the store.
    """
    from models.forecasting import Ensemble

    agg = load_daily_aggregates(settings.offline_store_dir, as_of,
                                since=as_of - timedelta(days=settings.forecast_history_days - 1), only=TABLES)
    totals = daily_series(agg, as_of)
    totals = totals[totals["unique_id"] == workspace]
    if len(totals) < settings.forecast_min_history_days:
        raise NoHistoryError(f"workspace {workspace!r} has {len(totals)} days of history in the feature store as "
                             f"of {as_of}; at least {settings.forecast_min_history_days} are needed")
    params = ensemble_params(settings)
    total_model = Ensemble(**params).fit(totals, freq="D")
    if target_metric == CREDITS_CUMULATIVE:
        frame = total_model.predict_cumulative(horizon, level=level).assign(dimension=TOTAL)
    else:
        frame = total_model.predict(h=horizon, level=level).assign(dimension=TOTAL)
        bottom = daily_series(agg, as_of, by_feature=True)
        bottom = bottom[bottom["unique_id"].str.split("|", n=1).str[0] == workspace]
        if by_feature and not bottom.empty:
            bottom_fc = Ensemble(**ensemble_params(settings, "feature")).fit(bottom, freq="D").predict(
                h=horizon, level=level)
            bottom_fc[["workspace_id", "feature"]] = bottom_fc["unique_id"].str.split("|", n=1, expand=True)
            features = reconcile(frame.rename(columns={"unique_id": "workspace_id"}),
                                 bottom_fc.drop(columns="unique_id"))
            frame = pd.concat([frame.rename(columns={"unique_id": "workspace_id"}),
                               features.rename(columns={"feature": "dimension"})], ignore_index=True)
    frame = frame.rename(columns={"unique_id": "workspace_id", "ds": "prediction_date", "yhat": "predicted_value",
                                  "yhat_lower": "confidence_lower", "yhat_upper": "confidence_upper"})
    frame = frame.assign(target_metric=CREDITS if target_metric == CREDITS else CREDITS_CUMULATIVE,
                         confidence_level=level / 100)
    return frame.sort_values(["dimension", "prediction_date"]).reset_index(drop=True)
