"""Peak usage for one workspace, on demand: the nightly peak forecast's production step
(``pipelines.peak_usage.forecast``) on that workspace's hourly feature rows, for one metric (calls or credits):
a ``PeakForecaster`` with the nightly parameters on its local wall clock (its ``workspace_hourly`` time zone,
else UTC), hourly rows at the asked level and 80%, and per local day the peak, capacity need, top peak hours
and the week's peak. No holdout, MLflow run or registry entry.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.contracts import PEAK_USAGE
from core.settings import Settings
from pipelines.features.hourly import hourly_series, load_hourly_aggregates
from pipelines.features.sets import WORKSPACE_HOURLY
from pipelines.features.store import read_offline
from pipelines.jobs.consumption import NoHistoryError
from pipelines.peak_usage.forecast import (
    daily_rows,
    forecast_peaks,
    hourly_rows,
    forecaster_params,
    history_days,
    week_peaks,
)

# The peak reads (v_capacity_alerts) serve each workspace's latest peak as-of date: an on-demand as-of after the
# nightly one would hide the nightly rows, so jobs use at most the workspace's latest nightly as-of date.
_NIGHTLY_AS_OF = sa.text("""
    select max(as_of_date) from analytics.predictions
    where workspace_id = :ws and prediction_type = :type and granularity = 'hour' and scenario = 'likely'
""")


def latest_nightly_as_of(engine: Engine, workspace_uuid: str) -> date | None:
    with engine.connect() as conn:
        return conn.execute(_NIGHTLY_AS_OF, {"ws": workspace_uuid, "type": PEAK_USAGE}).scalar()


def forecast_workspace_peaks(settings: Settings, workspace: str, as_of: date, horizon: int, metric: str,
                             level: int) -> pd.DataFrame:
    """One workspace's peak-usage rows of ``metric`` (and its ``_80``, ``_peak``, ``_capacity``,
    ``_peak_hour_probability``, ``_week_peak`` metrics) for the ``horizon`` days after ``as_of``.

    Raises:
        NoHistoryError: The workspace has no hourly rows in the feature store before ``as_of``.
    """
    from models.peaks import PeakForecaster
    from models.peaks.clock import missing_steps, to_local

    since = as_of - timedelta(days=history_days(settings))
    table = load_hourly_aggregates(settings.offline_store_dir, as_of, since)
    table = table[table["workspace_id"] == workspace]
    utc = hourly_series(table, as_of, (metric,), since=pd.Timestamp(since))
    if utc.empty or not utc[metric].any():
        raise NoHistoryError(f"workspace {workspace!r} has no hourly {metric} in the feature store's "
                             f"{history_days(settings)} days to {as_of}")
    feats = read_offline(settings.offline_store_dir, WORKSPACE_HOURLY, as_of)
    zone = "UTC"
    if feats is not None and (feats["workspace_id"] == workspace).any():
        zone = str(feats.loc[feats["workspace_id"] == workspace, "time_zone"].iloc[0] or "UTC")
    zones = {workspace: zone}
    series = to_local(utc, zones, [metric])[["unique_id", "ds", metric]].rename(columns={metric: "y"})
    model = PeakForecaster(**forecaster_params(settings), cache={}).fit(series)
    last_local = np.datetime64(as_of + timedelta(days=horizon + 1), "h") - np.timedelta64(1, "h")
    h = int(max(1, (last_local - model.ends_.min()).astype("int64")))
    missing = np.stack([missing_steps(zone, e, h) for e in model.ends_])
    peaks, point, paths = forecast_peaks(model, h, as_of + timedelta(days=1), horizon, level, missing)
    hourly = hourly_rows(model, zones, point, paths, as_of, horizon, metric, level)
    daily = daily_rows(peaks, week_peaks(peaks), metric, level, settings.peak_headroom)
    return pd.concat([hourly, daily], ignore_index=True).assign(dimension="total")
