"""Publish prediction sets to PostgreSQL: one transaction per set, upserted, idempotent for a date.

``publish_predictions``: the rows of one prediction type made as of ``D`` replace that type's future rows
(``prediction_date > D``) of the same workspaces: rows with the same key are updated only where a value
changed, rows no longer predicted are deleted, new ones inserted. A re-run for ``D`` leaves identical rows
(ids included); a failure rolls everything back, so the previous predictions stay served.
"""
from __future__ import annotations

import io
import json
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.ids import entity_uuid

PREDICTION_COLUMNS = [
    "workspace_id", "target_metric", "dimension", "granularity", "scenario", "prediction_date", "prediction_hour",
    "predicted_value", "confidence_lower", "confidence_upper", "confidence_level", "model_version",
]
_KEY = "workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date, prediction_hour"


def _copy(conn: sa.Connection, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"copy {table} ({', '.join(frame.columns)}) from stdin with (format csv, null '\\N')", buf)


def _uuids(ids: pd.Series, kind: str) -> pd.Series:
    mapping = {v: str(entity_uuid(kind, v)) for v in ids.unique()}
    return ids.map(mapping)


def publish_predictions(conn: sa.Connection, frame: pd.DataFrame, prediction_type: str, as_of: date) -> dict:
    """Replace ``prediction_type``'s future predictions of the frame's workspaces (see module docstring).

    ``frame`` has ``PREDICTION_COLUMNS`` with ``workspace_id`` as the source's id; ``granularity``,
    ``scenario`` and ``prediction_hour`` default to ``day``, ``likely`` and 0.
    """
    df = frame.copy()
    df = df.assign(**{k: v for k, v in {"granularity": "day", "scenario": "likely", "prediction_hour": 0,
                                         "dimension": "total"}.items() if k not in df})
    missing = [c for c in PREDICTION_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"prediction frame lacks {missing}")
    df = df[PREDICTION_COLUMNS]
    df["workspace_id"] = _uuids(df["workspace_id"].astype(str), "workspace")
    for col in ("predicted_value", "confidence_lower", "confidence_upper"):
        df[col] = df[col].astype(float).round(6)
    df["prediction_date"] = pd.to_datetime(df["prediction_date"]).dt.strftime("%Y-%m-%d")
    if df.duplicated(["workspace_id", "target_metric", "dimension", "granularity", "scenario", "prediction_date",
                      "prediction_hour"]).any():
        raise ValueError("prediction frame has duplicate keys")
    if (df["prediction_date"] <= as_of.isoformat()).any():
        raise ValueError(f"predictions must be for dates after the as-of date {as_of}")

    conn.execute(sa.text(
        "create temp table stage_predictions (workspace_id uuid, target_metric text, dimension text,"
        " granularity text, scenario text, prediction_date date, prediction_hour smallint, predicted_value numeric,"
        " confidence_lower numeric, confidence_upper numeric, confidence_level numeric, model_version text)"
        " on commit drop"))
    _copy(conn, "stage_predictions", df)
    params = {"type": prediction_type, "as_of": as_of}
    deleted = conn.execute(sa.text("""
        delete from analytics.predictions p
        where p.prediction_type = :type and p.prediction_date > :as_of
          and p.workspace_id in (select distinct workspace_id from stage_predictions)
          and not exists (
            select 1 from stage_predictions s
            where (s.workspace_id, s.target_metric, s.dimension, s.granularity, s.scenario, s.prediction_date,
                   s.prediction_hour)
                = (p.workspace_id, p.target_metric, p.dimension, p.granularity, p.scenario, p.prediction_date,
                   p.prediction_hour))
    """), params).rowcount
    upserted = conn.execute(sa.text(f"""
        insert into analytics.predictions as p ({_KEY}, predicted_value, confidence_lower, confidence_upper,
                                                confidence_level, model_version, as_of_date)
        select workspace_id, :type, target_metric, dimension, granularity, scenario, prediction_date, prediction_hour,
               predicted_value, confidence_lower, confidence_upper, confidence_level, model_version, :as_of
        from stage_predictions
        on conflict ({_KEY}) do update set
            predicted_value = excluded.predicted_value, confidence_lower = excluded.confidence_lower,
            confidence_upper = excluded.confidence_upper, confidence_level = excluded.confidence_level,
            model_version = excluded.model_version, as_of_date = excluded.as_of_date
        where (p.predicted_value, p.confidence_lower, p.confidence_upper, p.confidence_level, p.model_version,
               p.as_of_date)
          is distinct from (excluded.predicted_value, excluded.confidence_lower, excluded.confidence_upper,
               excluded.confidence_level, excluded.model_version, excluded.as_of_date)
    """), params).rowcount
    conn.execute(sa.text("drop table stage_predictions"))
    return {"rows": len(df), "changed": upserted, "deleted_stale": deleted}


def _json(value) -> str:
    """JSON text for a JSONB column (already-encoded text is kept as is)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=float)


CHURN_COLUMNS = ["workspace_id", "user_id", "churn_probability", "risk_score", "risk_factors",
                 "recommended_actions", "days_until_churn", "model_version"]


def publish_churn_scores(conn: sa.Connection, frame: pd.DataFrame, as_of: date) -> dict:
    """Replace the churn scores of ``as_of`` with ``frame`` (one row per workspace and user), in ``conn``'s
    transaction. Unchanged rows are left untouched; users no longer scored for ``as_of`` are removed."""
    missing = [c for c in CHURN_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"churn frame lacks {missing}")
    df = pd.DataFrame({
        "workspace_id": _uuids(frame["workspace_id"].astype(str), "workspace"),
        "user_id": _uuids(frame["user_id"].astype(str), "user"),
        "churn_probability": frame["churn_probability"].astype(float).round(6),
        "risk_score": frame["risk_score"].astype(float).round(3),
        "risk_factors": [_json(v) for v in frame["risk_factors"]],
        "recommended_actions": [_json(v) for v in frame["recommended_actions"]],
        "days_until_churn": frame["days_until_churn"].astype("Int64"),
        "model_version": frame["model_version"].astype(str),
    })
    if df.duplicated(["workspace_id", "user_id"]).any():
        raise ValueError("churn frame has duplicate (workspace_id, user_id) rows")
    if not np.isfinite(df["churn_probability"]).all() or not df["churn_probability"].between(0, 1).all():
        raise ValueError("churn probabilities must lie in [0, 1]")
    conn.execute(sa.text(
        "create temp table stage_churn (workspace_id uuid, user_id uuid, churn_probability numeric,"
        " risk_score numeric, risk_factors jsonb, recommended_actions jsonb, days_until_churn integer,"
        " model_version text) on commit drop"))
    _copy(conn, "stage_churn", df)
    params = {"d": as_of}
    deleted = conn.execute(sa.text("""
        delete from analytics.churn_predictions c where c.prediction_date = :d
          and not exists (select 1 from stage_churn s where s.workspace_id = c.workspace_id and s.user_id = c.user_id)
    """), params).rowcount
    changed = conn.execute(sa.text("""
        insert into analytics.churn_predictions as c (workspace_id, user_id, prediction_date, churn_probability,
            risk_score, risk_factors, recommended_actions, days_until_churn, model_version)
        select workspace_id, user_id, :d, churn_probability, risk_score, risk_factors, recommended_actions,
               days_until_churn, model_version from stage_churn
        on conflict (workspace_id, user_id, prediction_date) do update set
            churn_probability = excluded.churn_probability, risk_score = excluded.risk_score,
            risk_factors = excluded.risk_factors, recommended_actions = excluded.recommended_actions,
            days_until_churn = excluded.days_until_churn, model_version = excluded.model_version
        where (c.churn_probability, c.risk_score, c.risk_factors, c.recommended_actions, c.days_until_churn,
               c.model_version)
          is distinct from (excluded.churn_probability, excluded.risk_score, excluded.risk_factors,
               excluded.recommended_actions, excluded.days_until_churn, excluded.model_version)
    """), params).rowcount
    conn.execute(sa.text("drop table stage_churn"))
    return {"rows": len(df), "changed": changed, "deleted_stale": deleted}
