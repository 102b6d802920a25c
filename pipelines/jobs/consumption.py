"""Credit consumption for one workspace, on demand: the nightly forecast's steps 2-4 (``pipelines.consumption.
forecast``) on that workspace's feature rows only: its daily credit totals, its feature/service series reconciled
top-down to the total, and the cumulative totals.

The model is the one the nightly run serves: the stored serving version (``pipelines.serving.serving_plan``: the
champion, or the challenger for a workspace of the challenger arm) scored on the workspace's series as the nightly
scoring does (``pipelines.consumption.scoring.stored_models``: stored weights, specifications and interval
calibration, members refitted on the latest history, no backtest). A version is usable when it was trained on data
through the job's as-of date or earlier. Without one (no champion, an unreadable artifact, or an as-of date before
the version's training data ends) the job trains an Ensemble with the nightly parameters on the workspace alone, as
before; the job's result says which (``model``).

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


def serving_artifact(settings: Settings, engine, workspace: str, as_of: date):
    """The scoring artifact serving ``workspace`` (by its A/B arm) usable at ``as_of``, or None, and a note."""
    from pipelines.consumption.artifact import load_artifact
    from pipelines.consumption.scoring import MODEL_NAME
    from pipelines.serving import serving_plan

    # the nightly plan of the next day: a version trained through as_of itself is usable here (the night of
    # as_of retrains instead only so that a re-run gets the same version)
    plan = serving_plan(settings, engine, MODEL_NAME, as_of + timedelta(days=1),
                        lambda v: load_artifact(settings, MODEL_NAME, v), lambda art: art.trained_through)
    if plan.train_inline:
        if plan.note.startswith("no champion") or "unreadable" in plan.note:
            return None, plan.note.replace("trained inline", "trained on demand")
        return None, f"the serving version was trained on data after {as_of}: trained on demand"
    arm = plan.arms(pd.Series([workspace]), settings).iloc[0]
    art = plan.models[arm]
    return art, f"scored with the {arm} v{art.version} (trained through {art.trained_through})"


def forecast_workspace(settings: Settings, workspace: str, as_of: date, horizon: int, target_metric: str,
                       level: int, by_feature: bool = True, engine=None) -> tuple[pd.DataFrame, dict]:
    """One workspace's forecast rows of ``target_metric`` for the ``horizon`` days after ``as_of``.

    Args:
        workspace: The workspace's id in the source data (the feature store's key).
        target_metric: ``credits`` (the total, and per feature/service when ``by_feature``) or
            ``credits_cumulative``.
        engine: The analytics database, to find the serving version (None: train, as without one).

    Returns:
        Rows for the publisher: workspace_id, target_metric, dimension, prediction_date, predicted_value,
        confidence_lower, confidence_upper, confidence_level; and how they were made: ``model`` (a note),
        ``served_version`` (None when trained on demand).

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
    bottom = daily_series(agg, as_of, by_feature=True)
    bottom = bottom[bottom["unique_id"].str.split("|", n=1).str[0] == workspace]
    if target_metric == CREDITS_CUMULATIVE or not by_feature:
        bottom = bottom.iloc[0:0]
    art, note = serving_artifact(settings, engine, workspace, as_of) if engine is not None else \
        (None, "no database given: trained on demand")
    if art is not None:
        from pipelines.consumption.scoring import stored_models

        total_model, bottom_model = stored_models(settings, art, totals, bottom)
    else:
        total_model = Ensemble(**ensemble_params(settings)).fit(totals, freq="D")
        bottom_model = Ensemble(**ensemble_params(settings, "feature")).fit(bottom, freq="D") if len(bottom) else None
    info = {"model": note, "served_version": None if art is None else art.version}
    if target_metric == CREDITS_CUMULATIVE:
        frame = total_model.predict_cumulative(horizon, level=level).assign(dimension=TOTAL)
    else:
        frame = total_model.predict(h=horizon, level=level).assign(dimension=TOTAL)
        if bottom_model is not None:
            bottom_fc = bottom_model.predict(h=horizon, level=level)
            bottom_fc[["workspace_id", "feature"]] = bottom_fc["unique_id"].str.split("|", n=1, expand=True)
            features = reconcile(frame.rename(columns={"unique_id": "workspace_id"}),
                                 bottom_fc.drop(columns="unique_id"))
            frame = pd.concat([frame.rename(columns={"unique_id": "workspace_id"}),
                               features.rename(columns={"feature": "dimension"})], ignore_index=True)
    frame = frame.rename(columns={"unique_id": "workspace_id", "ds": "prediction_date", "yhat": "predicted_value",
                                  "yhat_lower": "confidence_lower", "yhat_upper": "confidence_upper"})
    frame = frame.assign(target_metric=CREDITS if target_metric == CREDITS else CREDITS_CUMULATIVE,
                         confidence_level=level / 100)
    return frame.sort_values(["dimension", "prediction_date"]).reset_index(drop=True), info
