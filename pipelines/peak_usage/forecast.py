"""Peak-usage training for one shard of workspaces (``shard_of``: a stable hash of the workspace id), and the row
builders scoring shares with it.

``train_shard`` (a retrain, ``pipelines.retrain``, or a night with no usable version): on the hourly aggregates of
the feature store (``pipelines.features.hourly``), per metric (calls, credits):
1. each workspace's UTC hours (zero-filled) are moved to its local wall clock (``models.peaks.clock``), with the
   time zone of its ``workspace_hourly`` features (declared, else inferred from its daily rhythm);
2. **holdout**: a :class:`~models.peaks.PeakForecaster` fitted without the last 168 hours forecasts them; the
   ensemble and each member alone are scored per local day (``pipelines.peak_usage.evaluation``);
3. **production**: the forecaster fitted on all hours (backtests, the members each group chooses, the error blocks
   of the sample paths) forecasts to the end of local day ``D + horizon`` (``production_rows``): hourly rows for
   the ``horizon`` UTC days after ``D`` (each UTC hour gets its wall-clock hour's forecast), and per local day the
   peak hour (top 3 with probabilities), the peak value with its interval and the capacity need (the upper bound x
   ``peak_headroom``), and the week's peak; its state (choices, error blocks) is saved for the scoring artifact
   (``pipelines.peak_usage.artifact``);
4. capacity alerts are counted for the run record with the rule of ``v_capacity_alerts`` (the limit from
   ``analytics.capacity_limits``, else the highest hour of the last 28 days).
Outputs are Parquet files in the shard's folder; ``pipelines.peak_usage.kind`` merges the shards.

``forecast_shard`` is the nightly shard: it scores with the served version (``pipelines.peak_usage.scoring``: step
1 and step 3's rows from the stored state, no holdout or backtest) and trains only when there is no usable version.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.contracts import (
    CAPACITY_SUFFIX,
    DAY,
    HOUR,
    INTERVAL_80_SUFFIX,
    PEAK_HOUR_PROBABILITY_SUFFIX,
    PEAK_METRICS,
    PEAK_SUFFIX,
    WEEK_PEAK_SUFFIX,
)
from core.settings import Settings
from pipelines.features.hourly import hourly_series, load_hourly_aggregates
from pipelines.features.sets import WORKSPACE_HOURLY
from pipelines.features.store import read_offline
from pipelines.peak_usage.evaluation import actual_days, day_metrics, hourly_coverage

log = logging.getLogger(__name__)
WEEK = 168


def shard_dir(settings: Settings, as_of: date, shard: int) -> Path:
    return settings.data_dir / "peak_usage" / f"as_of={as_of.isoformat()}" / f"shard={shard}"


def forecaster_params(settings: Settings) -> dict:
    return {"members": tuple(m.strip() for m in settings.peak_members.split(",") if m.strip()),
            "n_windows": settings.peak_backtest_windows, "n_paths": settings.peak_paths, "n_jobs": settings.threads,
            "seed": 0}


def history_days(settings: Settings) -> int:
    """Days of hourly history a shard reads: the members' weeks, the backtest windows and the holdout week."""
    from models.peaks import PeakForecaster

    return 7 * (PeakForecaster.history_weeks + settings.peak_backtest_windows + 1) + 2


def _limits(engine) -> dict[tuple[str, str], float]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select e.external_id, c.target_metric, c.limit_value::float8 from analytics.capacity_limits c"
            " join analytics.entities e on e.entity_type = 'workspace' and e.entity_id = c.workspace_id")).all()
    return {(r[0], r[1]): r[2] for r in rows}


def forecast_peaks(model, h: int, first, days: int, level: int, missing=None, paths=None, point=None):
    """A fitted forecaster's daily peaks (``models.peaks.daily_peaks`` rows) for ``days`` local days from
    ``first``, with the ``(n, h)`` point forecast and ``(n, n_paths, h)`` sample paths they come from (computed
    unless given). ``missing``: per series, steps that do not exist on its wall clock (DST gaps)."""
    from models.peaks import daily_peaks

    point = model.point_forecast(h) if point is None else point
    paths = model.sample_paths(h, point) if paths is None else paths
    return daily_peaks(model.ids_, model.ends_, np.nan_to_num(model.hist_[:, -24:]), point, paths, first, days,
                       level, missing), point, paths


def holdout(local: pd.DataFrame, params: dict, level: int, cache: dict) -> tuple[pd.DataFrame, dict, list]:
    """Fit without each series' last 168 hours, score the ensemble and each member alone on those days."""
    from models.peaks import PeakForecaster

    end = local.groupby("unique_id")["ds"].transform("max")
    train, test = local[local["ds"] <= end - pd.Timedelta(hours=WEEK)], local[local["ds"] > end - pd.Timedelta(hours=WEEK)]
    lengths = train.groupby("unique_id").size()
    train = train[train["unique_id"].isin(lengths[lengths >= 2 * 24].index)]
    if train.empty:
        return pd.DataFrame(), {}, []
    actual = actual_days(test)
    parts, coverage, fallbacks = [], {}, []
    variants = {"Ensemble": params["members"], **{m: (m,) for m in params["members"]}}
    for name, members in variants.items():
        model = PeakForecaster(**{**params, "members": members}, cache=cache).fit(train)
        first = [(pd.Timestamp(e) + pd.Timedelta(hours=1)).date() for e in model.ends_]
        peaks, point, paths = forecast_peaks(model, WEEK, first, 7, level)
        parts.append(day_metrics(peaks, actual, name))
        if name == "Ensemble":
            fallbacks = [f.__dict__ for f in model.fallbacks]
            ds = model.future_ds(WEEK).ravel().astype("datetime64[ns]")
            bounds = pd.DataFrame({"unique_id": np.repeat(model.ids_, WEEK), "ds": ds, "yhat": point.ravel()})
            for lv in (80, 95):
                lo, hi = np.quantile(paths, [(1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2], axis=1)
                bounds[f"lo-{lv}"], bounds[f"hi-{lv}"] = np.minimum(lo, point).ravel(), np.maximum(hi, point).ravel()
            coverage = hourly_coverage(test, bounds)
    return pd.concat(parts, ignore_index=True), coverage, fallbacks


def hourly_rows(model, zones: dict, point: np.ndarray, paths: np.ndarray, as_of: date, days: int,
                 metric: str, level: int) -> pd.DataFrame:
    """The ``days`` UTC days after ``as_of``, hour by hour: each UTC hour takes its wall-clock hour's forecast."""
    from models.peaks.clock import utc_steps

    utc = (np.datetime64(as_of + timedelta(days=1), "h") + np.arange(days * 24).astype("timedelta64[h]"))
    qs = {lv: np.quantile(paths, [(1 - lv / 100) / 2, 1 - (1 - lv / 100) / 2], axis=1) for lv in sorted({80, level})}
    frames = []
    for i, ws in enumerate(model.ids_):
        steps = np.clip(utc_steps(zones.get(ws, "UTC"), model.ends_[i], utc), 1, point.shape[1]) - 1
        for lv, (lo, hi) in qs.items():
            name = metric if lv == level else f"{metric}{INTERVAL_80_SUFFIX}"
            frames.append(pd.DataFrame({
                "workspace_id": ws, "target_metric": name, "granularity": HOUR,
                "prediction_date": utc.astype("datetime64[D]").astype("datetime64[ns]"),
                "prediction_hour": (utc.astype("int64") % 24), "predicted_value": point[i, steps],
                "confidence_lower": np.minimum(lo[i, steps], point[i, steps]),
                "confidence_upper": np.maximum(hi[i, steps], point[i, steps]), "confidence_level": lv / 100}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def daily_rows(peaks: pd.DataFrame, week: pd.DataFrame, metric: str, level: int, headroom: float) -> pd.DataFrame:
    """Daily prediction rows of ``metric`` from ``forecast_peaks``' peaks and ``week_peaks``: ``<metric>_peak``,
    ``_capacity`` (upper bound x ``headroom``), ``_week_peak`` and one ``_peak_hour_probability`` row per top hour."""
    base = {"granularity": DAY, "confidence_level": level / 100}
    rows = [peaks.assign(target_metric=f"{metric}{PEAK_SUFFIX}", prediction_hour=peaks["peak_hour"],
                         predicted_value=peaks["peak_value"], confidence_lower=peaks["peak_lower"],
                         confidence_upper=peaks["peak_upper"], **base),
            peaks.assign(target_metric=f"{metric}{CAPACITY_SUFFIX}", prediction_hour=peaks["peak_hour"],
                         predicted_value=peaks["capacity"] * headroom, confidence_lower=np.nan,
                         confidence_upper=np.nan, **base),
            week.assign(target_metric=f"{metric}{WEEK_PEAK_SUFFIX}", prediction_hour=week["peak_hour"],
                        predicted_value=week["peak_value"], confidence_lower=week["peak_lower"],
                        confidence_upper=week["peak_upper"], **base)]
    top = peaks[["unique_id", "date", "top_hours", "top_probs"]].explode(["top_hours", "top_probs"])
    rows.append(top.assign(target_metric=f"{metric}{PEAK_HOUR_PROBABILITY_SUFFIX}", prediction_hour=top["top_hours"],
                           predicted_value=top["top_probs"].astype(float), confidence_lower=np.nan,
                           confidence_upper=np.nan, **base))
    out = pd.concat(rows, ignore_index=True).rename(columns={"unique_id": "workspace_id", "date": "prediction_date"})
    out["prediction_date"] = pd.to_datetime(out["prediction_date"])
    out["prediction_hour"] = out["prediction_hour"].astype("int64")
    return out[["workspace_id", "target_metric", "granularity", "prediction_date", "prediction_hour",
                "predicted_value", "confidence_lower", "confidence_upper", "confidence_level"]]


def week_peaks(peaks: pd.DataFrame) -> pd.DataFrame:
    """The week's peak per series: the day with the highest peak value (its hour, value and interval), with the
    highest upper bound of any day as the upper bound (the week's peak exceeds none of the days' bounds)."""
    top = peaks.sort_values(["unique_id", "peak_value", "date"], ascending=[True, False, True]).groupby("unique_id").head(1)
    upper = peaks.groupby("unique_id")["peak_upper"].max()
    return top.assign(peak_upper=top["unique_id"].map(upper))


def load_shard_hours(settings: Settings, as_of: date, shard: int, n_shards: int) -> dict | None:
    """The shard's hourly series on each workspace's local clock, with its time zones and hourly features
    (``{"utc", "local", "zones", "feats"}``); None when no workspace of the shard has hourly history."""
    from models.peaks.clock import to_local

    since = as_of - timedelta(days=history_days(settings))
    # only the shard's workspaces are read (month file by month file), not the platform's hours
    table = load_hourly_aggregates(settings.offline_store_dir, as_of, since, shard=(shard, n_shards))
    utc = hourly_series(table, as_of, PEAK_METRICS, since=pd.Timestamp(since))
    if utc.empty:
        return None
    feats = read_offline(settings.offline_store_dir, WORKSPACE_HOURLY, as_of)
    feats = feats if feats is not None else pd.DataFrame(columns=["workspace_id", *WORKSPACE_HOURLY.columns])
    zones = dict(zip(feats["workspace_id"], feats["time_zone"]))
    return {"utc": utc, "local": to_local(utc, zones, list(PEAK_METRICS)), "zones": zones, "feats": feats}


def production_rows(settings: Settings, model, zones: dict, feats: pd.DataFrame, limits: dict, as_of: date,
                    metric: str) -> tuple[list[pd.DataFrame], int]:
    """A fitted forecaster's rows of ``metric`` (hourly, daily peaks, capacity, peak-hour probabilities, week's
    peak) for the ``peak_horizon_days`` after ``as_of``, and the count of hours whose upper bound is over the
    capacity limit (``v_capacity_alerts``' rule)."""
    from models.peaks.clock import missing_steps

    level, days = settings.peak_level, settings.peak_horizon_days
    last_local = (np.datetime64(as_of + timedelta(days=days + 1), "h") - np.timedelta64(1, "h"))
    h = int(max(1, (last_local - model.ends_.min()).astype("int64")))
    missing = np.stack([missing_steps(zones.get(ws, "UTC"), e, h) for ws, e in zip(model.ids_, model.ends_)])
    peaks, point, paths = forecast_peaks(model, h, as_of + timedelta(days=1), days, level, missing)
    hourly = hourly_rows(model, zones, point, paths, as_of, days, metric, level)
    base = feats.set_index("workspace_id")[f"{metric}_hour_max_28"]
    main = hourly[hourly["target_metric"] == metric]
    lim = [limits.get((w, metric), base.get(w, np.inf)) for w in main["workspace_id"]]
    alerts = int((main["confidence_upper"].to_numpy() > np.asarray(lim, dtype=float)).sum())
    return [hourly, daily_rows(peaks, week_peaks(peaks), metric, level, settings.peak_headroom)], alerts


def sort_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).sort_values(
        ["workspace_id", "target_metric", "granularity", "prediction_date", "prediction_hour"]).reset_index(drop=True)


def train_shard(settings: Settings, engine, as_of: date, shard: int, n_shards: int) -> dict:
    """Train one shard: per metric the holdout evaluation, the backtests that choose each group's members and
    collect the error blocks of the paths, and the production fit; writes its forecasts, holdout days, choices,
    fallbacks, time zones and scoring state (``pipelines.peak_usage.artifact``) and returns a reference."""
    from models.peaks import PeakForecaster
    from models.peaks.stored import peak_state
    from pipelines.peak_usage.artifact import save_shard_state

    t0 = time.perf_counter()
    out = shard_dir(settings, as_of, shard)
    out.mkdir(parents=True, exist_ok=True)
    ref = {"shard": shard, "path": str(out), "n_series": 0, "n_rows": 0, "n_workspaces": 0, "mode": "trained"}
    data = load_shard_hours(settings, as_of, shard, n_shards)
    if data is None:
        pd.DataFrame().to_parquet(out / "forecast.parquet")
        return ref
    utc, local, zones, feats = data["utc"], data["local"], data["zones"], data["feats"]
    params, level = forecaster_params(settings), settings.peak_level
    limits = _limits(engine)
    frames, evaluated, coverage, choices, fallbacks, alerts, states = [], [], {}, [], [], 0, {}
    for metric in PEAK_METRICS:
        series = local[["unique_id", "ds", metric]].rename(columns={metric: "y"})
        cache: dict = {}
        ev, cov, fb = holdout(series, params, level, cache)
        if len(ev):
            evaluated.append(ev.assign(metric=metric))
        coverage.update({f"{metric}_{k}": v for k, v in cov.items()})
        model = PeakForecaster(**params, cache=cache).fit(series)
        rows, n_alerts = production_rows(settings, model, zones, feats, limits, as_of, metric)
        frames += rows
        alerts += n_alerts
        states[metric] = peak_state(model)
        choices.append(model.weights().assign(metric=metric))
        fallbacks += [{**f.__dict__, "metric": metric} for f in model.fallbacks]
        fallbacks += [{**f, "metric": metric, "stage": "holdout"} for f in fb]
    frame = sort_frame(frames)
    frame.to_parquet(out / "forecast.parquet")
    if evaluated:
        pd.concat(evaluated, ignore_index=True).to_parquet(out / "holdout_days.parquet")
    pd.concat(choices, ignore_index=True).to_parquet(out / "weights.parquet")
    save_shard_state(out, shard, states)
    pd.DataFrame(fallbacks, columns=["unique_id", "model", "reason", "used", "metric", "stage"]).astype(
        {"unique_id": str}).to_parquet(out / "fallbacks.parquet")
    feats[feats["workspace_id"].isin(set(utc["unique_id"]))][
        ["workspace_id", "time_zone", "time_zone_source", "time_zone_score", "utc_offset_hours"]
    ].to_parquet(out / "time_zones.parquet")
    n_ws = int(utc["unique_id"].nunique())
    ref.update(n_series=n_ws * len(PEAK_METRICS), n_rows=len(frame), n_workspaces=n_ws, n_alert_hours=alerts,
               n_fallbacks=sum(1 for f in fallbacks if "stage" not in f), holdout_hourly=coverage,
               seconds=round(time.perf_counter() - t0, 1), history_start=str(utc["ds"].min().date()),
               history_end=as_of.isoformat())
    (out / "ref.json").write_text(json.dumps(ref, default=str))
    log.info("peak_usage shard %d trained: %d workspaces in %.1fs", shard, n_ws, ref["seconds"])
    return ref


def forecast_shard(settings: Settings, engine, as_of: date, shard: int, n_shards: int) -> dict:
    """The nightly shard: score with the served version(s) (``pipelines.peak_usage.scoring``), or train inline
    (``train_shard``) when there is no usable version; the reference's ``mode`` says which."""
    from pipelines.peak_usage.scoring import score_shard, scoring_plan

    plan = scoring_plan(settings, engine, as_of)
    if plan.train_inline:
        return {**train_shard(settings, engine, as_of, shard, n_shards), "train_reason": plan.note}
    return score_shard(settings, engine, as_of, shard, n_shards, plan)
