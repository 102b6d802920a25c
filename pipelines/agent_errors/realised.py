"""What happened, for the agent error-rate kind's realised accuracy (``pipelines/monitor.py``).

- Rates: each agent's observed daily error rate (failed / calls, days with calls only) in the predictions' keys
  (``dimension`` = the agent's source id), from ``analytics.agent_daily_metrics``.
- Alerts: each alert of as-of date ``T = D - horizon`` whose agent could still breach (status ``ok`` or
  ``escalating``: breaches, chronic, inactive and low-volume agents are left out) against whether a breach was
  then confirmed in ``(T, T + horizon]``, by the model's own rule (``models.error_rates.find_breaches``: two days
  at or above the threshold, enough failures, a binomial tail under the baseline), with the threshold and
  baseline the alert stated. ``predicted_positive`` = level ``warning`` or ``critical``. Each alert's ``arm`` is its
  workspace's arm in the same night's snapshots (``pipelines.ab.assign_snapshot_arms``; ``champion`` without one),
  so alerts are scored by arm like the rates.
"""
from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.arms import CHAMPION_ARM
from core.contracts import ERROR_RATE
from core.settings import Settings
from pipelines.agent_errors.data import engine_config

BREACH_TARGET = "breach_within_horizon"
ALERT_LEVELS = ("warning", "critical")

REALISED_RATES_SQL = (
    "select a.workspace_id, 'error_rate' as target_metric, e.external_id as dimension, 'day' as granularity,"
    " a.metric_date as prediction_date, 0 as prediction_hour, a.errors::float8 / a.calls as actual"
    " from analytics.agent_daily_metrics a"
    " join analytics.entities e on e.entity_type = 'agent' and e.entity_id = a.agent_id"
    " where a.calls > 0 and a.metric_date between :since and :until")


def _alerts(engine: Engine, as_of: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "with arms as (select distinct on (workspace_id) workspace_id, arm from analytics.prediction_snapshots"
            "  where prediction_type = :type and as_of_date = :d order by workspace_id, arm)"
            " select a.workspace_id, a.agent_id, a.as_of_date, a.alert_level, a.probability::float8 as probability,"
            " a.threshold::float8 as threshold, a.baseline_rate::float8 as baseline_rate, a.model_version,"
            " coalesce(arms.arm, :champion) as arm"
            " from analytics.agent_error_alerts a left join arms on arms.workspace_id = a.workspace_id"
            " where a.as_of_date = :d and a.status in ('ok', 'escalating')"
            " and a.probability is not null and a.baseline_rate is not null"), conn,
            params={"d": as_of, "type": ERROR_RATE, "champion": CHAMPION_ARM})


def _daily(engine: Engine, first: date, last: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(
            "select workspace_id, agent_id, metric_date, calls, errors from analytics.agent_daily_metrics"
            " where metric_date between :a and :b"), conn, params={"a": first, "b": last})


def alert_outcomes(settings: Settings, engine: Engine, as_of: date, observed_until: date) -> pd.DataFrame:
    """The alerts of ``as_of`` with ``outcome`` = a breach confirmed in ``(as_of, as_of + horizon]``."""
    from models.error_rates import find_breaches

    config = engine_config(settings)
    horizon, gap = config.horizon, config.thresholds.max_gap_days
    if as_of + timedelta(days=horizon) > observed_until:
        raise ValueError(f"the {horizon}-day window of {as_of} has not closed by {observed_until}")
    alerts = _alerts(engine, as_of)
    if alerts.empty:
        return alerts
    first = as_of - timedelta(days=gap)  # the day before a confirmation may be before the window
    days = pd.date_range(first, as_of + timedelta(days=horizon)).date
    daily = _daily(engine, first, days[-1])
    index = pd.MultiIndex.from_arrays([alerts["workspace_id"].astype(str), alerts["agent_id"].astype(str)])
    daily = daily.assign(workspace_id=daily["workspace_id"].astype(str), agent_id=daily["agent_id"].astype(str),
                         metric_date=pd.to_datetime(daily["metric_date"]))

    def grid(column: str) -> np.ndarray:  # (alerts, days), 0 on days without calls
        wide = daily.pivot_table(index=["workspace_id", "agent_id"], columns="metric_date", values=column,
                                 aggfunc="sum")
        return wide.reindex(index=index, columns=pd.to_datetime(days)).fillna(0).to_numpy(float)

    calls, errors = grid("calls"), grid("errors")
    thr = np.repeat(alerts["threshold"].to_numpy(float)[:, None], len(days), axis=1)
    base = np.repeat(alerts["baseline_rate"].to_numpy(float)[:, None], len(days), axis=1)
    br = find_breaches(SimpleNamespace(calls=calls, errors=errors), thr, config.thresholds, base)
    window = np.array([d > as_of for d in days])
    return alerts.assign(
        target_metric=BREACH_TARGET, outcome=br.breach[:, window].any(axis=1).astype(int),
        predicted_positive=alerts["alert_level"].isin(ALERT_LEVELS),
        decision_threshold=f"alert_level in {ALERT_LEVELS}")


def realised_alert_outcomes(settings: Settings, engine: Engine, run_date: date) -> pd.DataFrame | None:
    """Outcomes of the alerts whose window closed in the last ``monitor_rescore_days`` nights (as-of dates
    ``run_date - horizon - k``), for ``pipelines.monitor.score_outcomes``."""
    horizon = settings.agent_error_horizon_days
    frames = [alert_outcomes(settings, engine, run_date - timedelta(days=horizon + k), run_date)
              for k in range(settings.monitor_rescore_days)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None
