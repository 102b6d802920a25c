"""What happened to the users scored for churn, once their window has closed (``pipelines/monitor.py``).

The scores published as of ``T = D - churn_window_days`` (``analytics.churn_predictions.prediction_date``)
against the training label of ``pipelines.churn.train.churn_labels``: no active day in ``(T, T + window]``,
from the feature store's daily user aggregates, so the realised outcome is the label the model was trained and
promised on. ``predicted_positive`` = probability >= ``HIGH_RISK`` (the dashboard's high-risk cut). Each score
keeps the ``model_version`` and A/B ``arm`` that made it (``sql/020_churn_arms.sql``), so the classification
accuracy is stored per version and arm.
"""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import Settings
from pipelines.churn.train import active_days, churn_labels
from pipelines.features.store import load_daily_aggregates

CHURN_TARGET = "churned"
HIGH_RISK = 0.5


def _scores(engine: Engine, as_of: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "select w.external_id as workspace_id, u.external_id as user_id, c.churn_probability::float8 as probability,"
            " c.model_version, c.arm from analytics.churn_predictions c"
            " join analytics.entities w on w.entity_type = 'workspace' and w.entity_id = c.workspace_id"
            " join analytics.entities u on u.entity_type = 'user' and u.entity_id = c.user_id"
            " where c.prediction_date = :d"), conn, params={"d": as_of})


def churn_outcomes(settings: Settings, engine: Engine, as_of: date, observed_until: date) -> pd.DataFrame:
    """The scores of ``as_of`` with ``outcome`` = churned (the training label); empty when none were published."""
    return _outcomes(settings, engine, [as_of], observed_until)


def _outcomes(settings: Settings, engine: Engine, dates: list[date], observed_until: date) -> pd.DataFrame:
    window = settings.churn_window_days
    late = [d for d in dates if d + timedelta(days=window) > observed_until]
    if late:
        raise ValueError(f"the {window}-day churn window of {late[0]} has not closed by {observed_until}")
    scores = {d: s for d in dates if len(s := _scores(engine, d))}
    if not scores:
        return pd.DataFrame(columns=["workspace_id", "user_id", "probability", "model_version", "arm"])
    agg = load_daily_aggregates(settings.offline_store_dir, max(scores) + timedelta(days=window),  # read once
                                since=min(scores) + timedelta(days=1), only=("user_feature",))
    active = active_days(agg).astype({"workspace_id": str, "user_id": str})
    frames = [s.assign(target_metric=CHURN_TARGET, as_of_date=d,
                       outcome=churn_labels(s, active, d, window).to_numpy(),
                       predicted_positive=s["probability"] >= HIGH_RISK,
                       decision_threshold=f"probability >= {HIGH_RISK}") for d, s in scores.items()]
    return pd.concat(frames, ignore_index=True)


def realised_churn_outcomes(settings: Settings, engine: Engine, run_date: date) -> pd.DataFrame | None:
    """Outcomes of the scores whose window closed in the last ``monitor_rescore_days`` nights."""
    window = settings.churn_window_days
    frame = _outcomes(settings, engine, [run_date - timedelta(days=window + k)
                                         for k in range(settings.monitor_rescore_days)], run_date)
    return frame if len(frame) else None


def arm_churn_outcomes(settings: Settings, engine: Engine, run_date: date) -> pd.DataFrame | None:
    """Outcomes of the scores whose window closed in the last ``ab_window_days`` nights, with their arm and version:
    what the nightly A/B comparison reads (``pipelines.ab.compare_outcome_arms``)."""
    window = settings.churn_window_days
    frame = _outcomes(settings, engine, [run_date - timedelta(days=window + k)
                                         for k in range(settings.ab_window_days)], run_date)
    return frame if len(frame) else None
