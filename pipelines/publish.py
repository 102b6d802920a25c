"""The one publisher: replace a prediction set in PostgreSQL in one transaction, upserted, idempotent.

A prediction set is the rows one prediction kind made as of a date ``D``. ``replace_set`` stages them with
COPY, deletes the target's rows in the set's scope that are no longer predicted, and upserts the rest,
touching only rows whose values changed. A re-run for ``D`` leaves identical rows (ids included); a
failure rolls everything back, so the previous predictions stay served.

Targets: ``PREDICTIONS``, ``CHURN``, and the agent error-rate kind's ``AGENT_ERROR_ALERTS`` and
``AGENT_ERROR_FORECASTS`` (published beside its predictions, in the same transaction: ``EXTRA_SETS``);
``publish_*`` functions only turn a kind's frame into the target's rows (UUIDs, rounding, checks).
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.arms import CHAMPION_ARM
from core.contracts import DAY, LIKELY, NIGHTLY_SCENARIOS, TOTAL
from core.ids import entity_uuid
from core.jobs import ON_DEMAND_SCENARIO


@dataclass(frozen=True)
class PublishTarget:
    """Where a prediction set goes and which of the table's rows it replaces.

    ``stage``: the frame's columns and their SQL types; ``constants``: columns filled from the call's
    parameters (``:as_of``, ``:type``); ``key``: the table's unique key; ``scope``: a predicate on the
    table (alias ``t``) selecting the rows this set replaces. ``scenarios``: for a table with a ``scenario``
    column, the scenarios this target owns: it deletes and upserts only rows of those, and refuses staged rows
    of any other (so the nightly sets and the on-demand jobs never touch each other's rows).
    """

    table: str
    stage: dict[str, str]
    constants: dict[str, str]
    key: tuple[str, ...]
    scope: str
    scenarios: tuple[str, ...] = ()

    @property
    def values(self) -> list[str]:
        return [c for c in [*self.stage, *self.constants] if c not in self.key]


PREDICTIONS = PublishTarget(
    table="analytics.predictions",
    stage={"workspace_id": "uuid", "target_metric": "text", "dimension": "text", "granularity": "text",
           "scenario": "text", "prediction_date": "date", "prediction_hour": "smallint", "predicted_value": "numeric",
           "confidence_lower": "numeric", "confidence_upper": "numeric", "confidence_level": "numeric",
           "model_version": "text"},
    constants={"prediction_type": ":type", "as_of_date": ":as_of"},
    key=("workspace_id", "prediction_type", "target_metric", "dimension", "granularity", "scenario",
         "prediction_date", "prediction_hour"),
    scope="t.prediction_type = :type and t.prediction_date > :as_of"
          " and t.workspace_id in (select distinct workspace_id from stage_rows)",
    scenarios=NIGHTLY_SCENARIOS,  # on-demand job rows are ON_DEMAND_PREDICTIONS' alone
)
CHURN = PublishTarget(
    table="analytics.churn_predictions",
    stage={"workspace_id": "uuid", "user_id": "uuid", "churn_probability": "numeric", "risk_score": "numeric",
           "risk_factors": "jsonb", "recommended_actions": "jsonb", "days_until_churn": "integer",
           "model_version": "text", "arm": "text"},
    constants={"prediction_date": ":as_of"},
    key=("workspace_id", "user_id", "prediction_date"),
    scope="t.prediction_date = :as_of",
)
# One workspace shard of the churn scores (``pipelines.nightly.publish_part_step``): the set's workspaces only;
# ``drop_unscored_workspaces`` then removes the as-of rows of workspaces no longer scored at all.
CHURN_SHARD = replace(CHURN, scope="t.prediction_date = :as_of"
                                   " and t.workspace_id in (select distinct workspace_id from stage_rows)")


def _copy(conn: sa.Connection, table: str, frame: pd.DataFrame) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"copy {table} ({', '.join(frame.columns)}) from stdin with (format csv, null '\\N')", buf)


def _chunks(rows) -> Iterable[pd.DataFrame]:
    return [rows] if isinstance(rows, pd.DataFrame) else rows


def stage_rows(conn: sa.Connection, target: PublishTarget, rows: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """``rows`` (one frame, or chunks copied one after another, so a large set is never in memory at once) in the
    temp table ``stage_rows`` (dropped at commit), indexed on the staged key and analyzed; returns the rows staged.
    Duplicate keys, also across chunks, are an error (the unique index refuses them).

    The index keeps the stale-row delete's anti-join linear whatever the planner believes: with the target
    table's statistics stale (e.g. a night after the first publish, before autovacuum analyzed it) it chose a
    nested loop over a sequential scan of the staged rows, quadratic: a re-run's 218,000 hourly peak-usage rows
    at 300 workspaces did not finish in 10 minutes; indexed, 0.75 s."""
    staged_key = [c for c in target.key if c in target.stage]
    columns = ", ".join(f"{c} {t}" for c, t in target.stage.items())
    conn.execute(sa.text(f"create temp table stage_rows ({columns}) on commit drop"))
    n = 0
    for chunk in _chunks(rows):
        _copy(conn, "stage_rows", chunk[list(target.stage)])
        n += len(chunk)
    try:  # the failed statement aborts the transaction: nothing of the set is published
        conn.execute(sa.text(f"create unique index on stage_rows ({', '.join(staged_key)})"))
    except sa.exc.IntegrityError:
        raise ValueError(f"{target.table}: prediction set has duplicate keys {staged_key}") from None
    conn.execute(sa.text("analyze stage_rows"))
    return n


def stale_rows_delete(target: PublishTarget, scope: str) -> str:
    """Delete the table's rows in ``scope`` that the staged set no longer has."""
    same_key = " and ".join(f"s.{c} = t.{c}" for c in target.key if c in target.stage)
    return (f"delete from {target.table} t where {scope}"
            f" and not exists (select 1 from stage_rows s where {same_key})")


def replace_set(conn: sa.Connection, target: PublishTarget, rows: pd.DataFrame | Iterable[pd.DataFrame],
                params: dict) -> dict:
    """Replace ``target``'s rows in scope with ``rows`` (columns ``target.stage``; one frame or chunks), in
    ``conn``'s transaction."""
    scope = target.scope

    def owned(chunks):
        for chunk in chunks:
            foreign = sorted(set(chunk["scenario"]) - set(target.scenarios))
            if foreign:
                raise ValueError(f"{target.table}: rows of scenario(s) {foreign} are not this target's; it publishes "
                                 f"{list(target.scenarios)}")
            yield chunk

    if target.scenarios:
        rows = owned(_chunks(rows))
        scope += " and t.scenario = any(cast(:owned_scenarios as text[]))"
        params = {**params, "owned_scenarios": list(target.scenarios)}
    n = stage_rows(conn, target, rows)
    deleted = conn.execute(sa.text(stale_rows_delete(target, scope)), params).rowcount
    insert_cols = [*target.stage, *target.constants]
    select_cols = [*target.stage, *target.constants.values()]
    values = target.values
    changed = conn.execute(sa.text(
        f"insert into {target.table} as t ({', '.join(insert_cols)})"
        f" select {', '.join(select_cols)} from stage_rows"
        f" on conflict ({', '.join(target.key)}) do update set"
        f" {', '.join(f'{c} = excluded.{c}' for c in values)}"
        f" where ({', '.join(f't.{c}' for c in values)})"
        f" is distinct from ({', '.join(f'excluded.{c}' for c in values)})"), params).rowcount
    conn.execute(sa.text("drop table stage_rows"))
    return {"rows": n, "changed": changed, "deleted_stale": deleted}


def _uuids(ids: pd.Series, kind: str) -> pd.Series:
    mapping = {v: str(entity_uuid(kind, v)) for v in ids.unique()}
    return ids.map(mapping)


def prediction_rows(frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """``frame`` (``workspace_id`` as the source's id; ``granularity``, ``scenario``, ``prediction_hour`` and
    ``dimension`` default to ``day``, ``likely``, 0 and ``total``) as ``analytics.predictions`` rows."""
    defaults = {"granularity": DAY, "scenario": LIKELY, "prediction_hour": 0, "dimension": TOTAL}
    df = frame.assign(**{k: v for k, v in defaults.items() if k not in frame})
    missing = [c for c in PREDICTIONS.stage if c not in df]
    if missing:
        raise ValueError(f"prediction frame lacks {missing}")
    df = df[list(PREDICTIONS.stage)].copy()
    df["workspace_id"] = _uuids(df["workspace_id"].astype(str), "workspace")
    for col in ("predicted_value", "confidence_lower", "confidence_upper"):
        df[col] = df[col].astype(float).round(6)
    df["prediction_date"] = pd.to_datetime(df["prediction_date"]).dt.strftime("%Y-%m-%d")
    if (df["prediction_date"] <= as_of.isoformat()).any():
        raise ValueError(f"predictions must be for dates after the as-of date {as_of}")
    return df


def publish_predictions(conn: sa.Connection, frame: pd.DataFrame | Iterable[pd.DataFrame], prediction_type: str,
                        as_of: date) -> dict:
    """Replace ``prediction_type``'s future rows (``prediction_date > as_of``) of the frame's workspaces (one frame,
    or the set in chunks)."""
    return replace_set(conn, PREDICTIONS, (prediction_rows(f, as_of) for f in _chunks(frame)),
                       {"type": prediction_type, "as_of": as_of})


# On-demand jobs (pipelines/jobs/): the same rows under their own scenario (ON_DEMAND_SCENARIO), replacing only
# that scenario's rows of the frame's workspaces and metrics (any as-of date: a job's rows replace the last job's).
ON_DEMAND_PREDICTIONS = replace(
    PREDICTIONS,
    scope="t.prediction_type = :type"
          " and t.workspace_id in (select distinct workspace_id from stage_rows)"
          " and t.target_metric in (select distinct target_metric from stage_rows)",
    scenarios=(ON_DEMAND_SCENARIO,),
)


def publish_on_demand_predictions(conn: sa.Connection, frame: pd.DataFrame, prediction_type: str,
                                  as_of: date) -> dict:
    """Replace a workspace's on-demand rows of ``prediction_type`` and the frame's metrics with ``frame``."""
    (scenario,) = ON_DEMAND_PREDICTIONS.scenarios
    rows = prediction_rows(frame.assign(scenario=scenario), as_of)
    return replace_set(conn, ON_DEMAND_PREDICTIONS, rows, {"type": prediction_type, "as_of": as_of})


def _json_default(value):
    return value.tolist() if isinstance(value, np.ndarray) else float(value)


def _json(value) -> str:
    """JSON text for a JSONB column (already-encoded text is kept as is; arrays, e.g. lists read back from
    Parquet, as lists)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=_json_default)


def churn_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A churn scores frame (one row per workspace and user, source ids) as ``churn_predictions`` rows; the A/B
    ``arm`` that scored each user is kept (``champion`` when the frame has none)."""
    missing = [c for c in ("workspace_id", "user_id", "churn_probability", "risk_score", "risk_factors",
                           "recommended_actions", "days_until_churn", "model_version") if c not in frame]
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
        "arm": frame["arm"].astype(str) if "arm" in frame else CHAMPION_ARM,
    })
    if not np.isfinite(df["churn_probability"]).all() or not df["churn_probability"].between(0, 1).all():
        raise ValueError("churn probabilities must lie in [0, 1]")
    return df


def publish_churn_scores(conn: sa.Connection, frame: pd.DataFrame | Iterable[pd.DataFrame], as_of: date,
                         whole_set: bool = True) -> dict:
    """Replace the churn scores of ``as_of`` (one frame, or the set in chunks); users no longer scored for ``as_of``
    are removed. ``whole_set=False`` (a workspace shard of the set): only the frame's workspaces' scores are
    replaced."""
    return replace_set(conn, CHURN if whole_set else CHURN_SHARD, (churn_rows(f) for f in _chunks(frame)),
                       {"as_of": as_of})


def drop_unscored_workspaces(conn: sa.Connection, workspace_ids: Iterable, as_of: date) -> int:
    """After a churn set was published in workspace shards: delete the ``as_of`` scores of workspaces that are not
    in the set (``workspace_ids``, source ids) at all, as publishing the whole set at once would have."""
    ids = workspace_uuids(workspace_ids)
    return conn.execute(sa.text(
        "delete from analytics.churn_predictions t where t.prediction_date = :as_of and not exists"
        " (select 1 from unnest(cast(:ids as uuid[])) as s(workspace_id) where s.workspace_id = t.workspace_id)"),
        {"as_of": as_of, "ids": ids}).rowcount


def workspace_uuids(workspace_ids) -> list[str]:
    """Distinct workspace ids (source ids) as the UUIDs the published rows carry."""
    return sorted(_uuids(pd.Series(list(workspace_ids), dtype=object).astype(str).drop_duplicates(), "workspace"))


AGENT_ERROR_ALERTS = PublishTarget(
    table="analytics.agent_error_alerts",
    stage={"workspace_id": "uuid", "agent_id": "uuid", "status": "text", "alert_level": "text",
           "probability": "numeric", "expected_breach_date": "date", "threshold": "numeric",
           "threshold_source": "text", "current_rate": "numeric", "baseline_rate": "numeric",
           "calls_last_7d": "bigint", "errors_last_7d": "bigint", "trend_per_day": "numeric",
           "failing_users_share": "numeric", "calls_at_risk": "numeric", "reason": "text", "drivers": "jsonb",
           "risk_rank": "numeric", "model_version": "text"},
    constants={"as_of_date": ":as_of"},
    key=("workspace_id", "agent_id", "as_of_date"),
    scope="t.as_of_date = :as_of",
)
AGENT_ERROR_FORECASTS = PublishTarget(
    table="analytics.agent_error_forecasts",
    stage={"workspace_id": "uuid", "agent_id": "uuid", "prediction_date": "date", "predicted_rate": "numeric",
           "lower_80": "numeric", "upper_80": "numeric", "lower_95": "numeric", "upper_95": "numeric",
           "expected_calls": "numeric", "p_breach_by": "numeric", "model_version": "text"},
    constants={"as_of_date": ":as_of"},
    key=("workspace_id", "agent_id", "prediction_date"),
    scope="t.prediction_date > :as_of",
)


def _agent_keys(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"workspace_id": _uuids(frame["workspace_id"].astype(str), "workspace"),
                         "agent_id": _uuids(frame["agent_id"].astype(str), "agent")})


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d")


def agent_alert_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """An alerts frame (``models.error_rates.build_alerts`` + ``threshold_source`` and ``model_version``; source
    ids) as ``agent_error_alerts`` rows."""
    missing = [c for c in AGENT_ERROR_ALERTS.stage if c not in frame]
    if missing:
        raise ValueError(f"alerts frame lacks {missing}")
    df = pd.concat([_agent_keys(frame), frame[[c for c in AGENT_ERROR_ALERTS.stage
                                               if c not in ("workspace_id", "agent_id")]].reset_index(drop=True)],
                   axis=1)
    for col in ("probability", "threshold", "current_rate", "baseline_rate", "trend_per_day", "failing_users_share",
                "calls_at_risk", "risk_rank"):
        df[col] = df[col].astype(float).round(6)
    df["expected_breach_date"] = _dates(df["expected_breach_date"])
    df["drivers"] = [_json(v) for v in df["drivers"]]
    p = df["probability"].dropna()
    if not p.between(0, 1).all():
        raise ValueError("alert probabilities must lie in [0, 1]")
    return df


def agent_forecast_rows(frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """A forecast frame (``models.error_rates.forecast.forecast_frame`` + ``model_version``) as
    ``agent_error_forecasts`` rows."""
    missing = [c for c in AGENT_ERROR_FORECASTS.stage if c not in frame]
    if missing:
        raise ValueError(f"forecast frame lacks {missing}")
    df = pd.concat([_agent_keys(frame), frame[[c for c in AGENT_ERROR_FORECASTS.stage
                                               if c not in ("workspace_id", "agent_id")]].reset_index(drop=True)],
                   axis=1)
    for col in ("predicted_rate", "lower_80", "upper_80", "lower_95", "upper_95", "expected_calls", "p_breach_by"):
        df[col] = df[col].astype(float).round(6)
    df["prediction_date"] = _dates(df["prediction_date"])
    if (df["prediction_date"] <= as_of.isoformat()).any():
        raise ValueError(f"forecasts must be for dates after the as-of date {as_of}")
    return df


def publish_agent_error_alerts(conn: sa.Connection, frame: pd.DataFrame, as_of: date) -> dict:
    """Replace the alerts of ``as_of`` (one row per agent); earlier dates' alerts stay."""
    return replace_set(conn, AGENT_ERROR_ALERTS, agent_alert_rows(frame), {"as_of": as_of})


def publish_agent_error_forecasts(conn: sa.Connection, frame: pd.DataFrame, as_of: date) -> dict:
    """Replace every agent's forecast of the days after ``as_of`` (past days keep their last forecast)."""
    return replace_set(conn, AGENT_ERROR_FORECASTS, agent_forecast_rows(frame, as_of), {"as_of": as_of})


# Sets a kind may publish beside its main prediction set, in the same transaction (``KindResult.extra_sets``).
EXTRA_SETS = {
    "agent_error_alerts": publish_agent_error_alerts,
    "agent_error_forecasts": publish_agent_error_forecasts,
}


def publish_extra(conn: sa.Connection, name: str, frame: pd.DataFrame, as_of: date) -> dict:
    if name not in EXTRA_SETS:
        raise ValueError(f"unknown prediction set {name!r}; choose from {sorted(EXTRA_SETS)}")
    return EXTRA_SETS[name](conn, frame, as_of)
