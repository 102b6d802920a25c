"""The nightly run for one logical date ``D``, as steps that take and return plain values.

Each ``*_step`` is what one Airflow task calls (``dags/predictive_analytics_nightly.py``); ``run_nightly``
calls them in order without Airflow (``pae run --date D``). Steps exchange references only: dates, shard
numbers, paths under ``data_dir`` and MLflow run ids; data stays in the stores. Every step records itself
in ``analytics.pipeline_runs``. Nothing is published before every gate and model step has succeeded, and
publishing is one transaction per prediction set, so a failed run leaves the previous predictions served.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from core.db import get_engine, migrate
from core.runs import recorded_step
from core.settings import Settings, get_settings, limit_threads

log = logging.getLogger(__name__)


def resolve_run_date(explicit: str | None, logical_date: datetime | None, run_after: datetime | None = None) -> date:
    """The date a run processes: an explicit ``run_date``, else the logical date, else the day before
    ``run_after`` (Airflow 3 manual runs may have no logical date)."""
    if explicit:
        return date.fromisoformat(str(explicit))
    if logical_date is not None:
        return logical_date.astimezone(timezone.utc).date()
    if run_after is not None:
        return run_after.astimezone(timezone.utc).date() - timedelta(days=1)
    raise ValueError("no run date: pass run_date=YYYY-MM-DD")


def _ctx(settings: Settings | None):
    settings = settings or get_settings()
    limit_threads(settings.threads)
    return settings, get_engine(settings)


def extract_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.ingest.extract import extract

    settings, engine = _ctx(settings)
    migrate(engine)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "extract", d) as rec:
        s = extract(engine, d, settings.staging_dir, settings.late_window_days)
        rec.row_counts = {"rows": s.rows, "days": len(s.dates)}
        rec.details = s.as_dict()
    return s.as_dict()


def validate_raw_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.ingest.extract import read_staged_events
    from pipelines.quality import daily_row_counts, enforce, validate_raw_events

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "validate_raw", d) as rec:
        events = read_staged_events(settings.staging_dir, d, since=d - timedelta(days=settings.late_window_days))
        report = validate_raw_events(events, d, recent_daily_rows=daily_row_counts(settings.staging_dir, d))
        rec.details = {"quality": report.as_dict()}
        rec.row_counts = {"rows_checked": len(events)}
        enforce(report)
    return {"passed": True, "rows_checked": len(events)}


def features_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.features.store import build_feature_store

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "features", d) as rec:
        s = build_feature_store(engine, settings.staging_dir, settings.offline_store_dir, d)
        rec.row_counts = s.rows
        rec.details = s.as_dict()
    return s.as_dict()


def validate_features_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.features.sets import FEATURE_SETS
    from pipelines.features.store import read_offline
    from pipelines.quality import enforce, validate_features

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "validate_features", d) as rec:
        frames = {name: read_offline(settings.offline_store_dir, fs, d) for name, fs in FEATURE_SETS.items()}
        missing = [k for k, v in frames.items() if v is None]
        if missing:
            raise RuntimeError(f"feature sets {missing} were not built for {d}; run the features step first")
        report = validate_features(frames, d)
        rec.details = {"quality": report.as_dict()}
        rec.row_counts = {k: len(v) for k, v in frames.items()}
        enforce(report)
    return {"passed": True, "rows": {k: len(v) for k, v in frames.items()}}


def workspace_shards(settings: Settings | None = None) -> list[int]:
    """Shard ids the forecasting step is mapped over (workspaces are assigned by a stable hash)."""
    settings = settings or get_settings()
    return list(range(settings.shards))


def forecast_shard_step(run_date: str, shard: int, settings: Settings | None = None) -> dict:
    from pipelines.consumption.forecast import forecast_shard

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, f"forecast_shard_{shard}", d) as rec:
        ref = forecast_shard(settings, d, shard, settings.shards)
        rec.row_counts = {"series": ref["n_series"], "forecast_rows": ref["n_rows"]}
        rec.mlflow_run_ids = [ref["mlflow_run_id"]] if ref.get("mlflow_run_id") else []
        rec.details = ref
    return ref


def churn_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.churn.train import train_and_score

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "churn", d) as rec:
        ref = train_and_score(settings, engine, d)
        rec.status = ref["status"]
        rec.row_counts = {"scored_users": ref.get("n_scored", 0), "training_rows": ref.get("n_train", 0)}
        rec.mlflow_run_ids = [ref["mlflow_run_id"]] if ref.get("mlflow_run_id") else []
        rec.details = ref
    return ref


def publish_step(run_date: str, forecast_refs: list[dict], churn_ref: dict, settings: Settings | None = None) -> dict:
    """Register the consumption model, then publish each prediction set in its own transaction."""
    import pandas as pd

    from pipelines.consumption.forecast import finalize
    from pipelines.publish import publish_churn_scores, publish_predictions

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    out: dict = {"run_date": run_date}
    with recorded_step(engine, "publish", d) as rec:
        final = finalize(settings, engine, d, forecast_refs)
        out["consumption"] = final
        if final["publish"]:
            frame = pd.read_parquet(final["forecast_path"])
            with engine.begin() as conn:
                out["consumption"]["published"] = publish_predictions(conn, frame, "credit_consumption", d)
        if churn_ref.get("status") == "success":
            scores = pd.read_parquet(churn_ref["scores_path"])
            with engine.begin() as conn:
                out["churn"] = publish_churn_scores(conn, scores, d)
        else:
            out["churn"] = {"skipped": churn_ref.get("status"), "reason": churn_ref.get("reason")}
        rec.row_counts = {
            "predictions": out["consumption"].get("published", {}).get("rows", 0),
            "churn_predictions": out["churn"].get("rows", 0),
        }
        rec.mlflow_run_ids = [final["mlflow_run_id"]] if final.get("mlflow_run_id") else []
        rec.details = out
    return out


def record_run_step(run_date: str, published: dict, settings: Settings | None = None) -> dict:
    """One summary row for the whole run: step statuses, durations and row counts of this date."""
    import sqlalchemy as sa

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with engine.connect() as conn:
        steps = conn.execute(sa.text(
            "select distinct on (step) step, status, duration_s, row_counts, mlflow_run_ids"
            " from analytics.pipeline_runs where logical_date = :d and step <> 'nightly'"
            " order by step, started_at desc"), {"d": d}).mappings().all()
    with recorded_step(engine, "nightly", d) as rec:
        rec.details = {"steps": {s["step"]: {"status": s["status"], "duration_s": s["duration_s"]} for s in steps},
                       "published": published}
        rec.row_counts = {s["step"]: s["row_counts"] for s in steps}
        rec.mlflow_run_ids = sorted({r for s in steps for r in (s["mlflow_run_ids"] or [])})
    return {"run_date": run_date, "steps": len(steps)}


def run_nightly(run_date: date, settings: Settings | None = None) -> dict:
    """The DAG's steps in order, without Airflow. The first run for a date backfills what it needs."""
    settings = settings or get_settings()
    d = run_date.isoformat()
    extract_step(d, settings)
    validate_raw_step(d, settings)
    features_step(d, settings)
    validate_features_step(d, settings)
    refs = [forecast_shard_step(d, k, settings) for k in workspace_shards(settings)]
    churn = churn_step(d, settings)
    published = publish_step(d, refs, churn, settings)
    record_run_step(d, published, settings)
    return published
