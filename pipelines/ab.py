"""A/B: each night, compare the arms' realised accuracy and record the verdict (and a promotion it earns).

With ``settings.ab_challenger_share > 0`` a stable share of workspaces (``core.arms``) is served by the
challenger, and the realised-accuracy step scores every prediction per arm (``analytics.prediction_accuracy.arm``).
``compare_arms`` sums each workspace's realised errors over the last ``ab_window_days``, compares the arms with
``models.promotion.compare_arms`` (MASE-like ratio to a weekly seasonal naive, challenger - champion with a
seeded 95% workspace-level bootstrap interval), upserts one row per kind and date into
``analytics.ab_comparisons`` and logs it to MLflow (experiment ``pae-ab``, one run per kind and date, reused on
a re-run). When the whole interval says the challenger is at least ``ab_min_improvement`` better and the
challenger arm was served by another version than the champion, a ``promote`` decision is recorded
(``analytics.model_decisions`` with ``source = 'ab_realised'``, MLflow tags ``pae_ab_decision*`` on the version,
``ml_models.performance_metrics.ab_decision``); the next publish of that kind applies it
(``pipelines.registry.apply_published``). A classification kind (churn: ``ab_outcomes``) is compared the same way
on its realised Brier score (``compare_outcome_arms``, ``metric = 'brier'``; ``workspace_days_*`` count scored
users).
"""
from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.arms import CHALLENGER_ARM, CHAMPION_ARM, arm_of
from core.settings import Settings
from models.promotion import CHALLENGER_BETTER, ArmComparison, compare_brier_arms
from models.promotion import compare_arms as compare_arm_frames
from pipelines.registry import (AB_REALISED, PROMOTE, champion_version, json_ready, keyed_run, record_decision,
                                tag_decision)

log = logging.getLogger(__name__)

EXPERIMENT = "pae-ab"
CONFIDENCE = 0.95

_PER_WORKSPACE = sa.text("""
select workspace_id::text as workspace_id, arm, sum(abs_error) as abs_error, sum(naive_abs_error) as naive_abs_error,
       sum(actual_total) as actual_total, count(distinct scored_date) as workspace_days
from analytics.prediction_accuracy
where prediction_type = :type and scored_date > :since and scored_date <= :until and naive_abs_error is not null
group by workspace_id, arm
""")

# the version that served each arm most recently (by scored day, then by workspace-days)
_ARM_VERSIONS = sa.text("""
select distinct on (arm) arm, model_version
from analytics.prediction_accuracy
where prediction_type = :type and scored_date > :since and scored_date <= :until
group by arm, model_version
order by arm, max(scored_date) desc, count(*) desc
""")

_UPSERT = sa.text("""
insert into analytics.ab_comparisons (kind, run_date, prediction_type, window_days, metric, workspaces_champion,
    workspaces_challenger, workspace_days_champion, workspace_days_challenger, metric_champion, metric_challenger,
    wape_champion, wape_challenger, diff, ci_low, ci_high, relative_diff, relative_ci_low, relative_ci_high,
    confidence, verdict, champion_version, challenger_version, mlflow_run_id, details)
values (:kind, :run_date, :prediction_type, :window_days, :metric, :workspaces_champion, :workspaces_challenger,
    :workspace_days_champion, :workspace_days_challenger, :metric_champion, :metric_challenger, :wape_champion,
    :wape_challenger, :diff, :ci_low, :ci_high, :relative_diff, :relative_ci_low, :relative_ci_high, :confidence,
    :verdict, :champion_version, :challenger_version, :mlflow_run_id, cast(:details as jsonb))
on conflict (kind, run_date) do update set prediction_type = excluded.prediction_type,
    window_days = excluded.window_days, metric = excluded.metric, workspaces_champion = excluded.workspaces_champion,
    workspaces_challenger = excluded.workspaces_challenger, workspace_days_champion = excluded.workspace_days_champion,
    workspace_days_challenger = excluded.workspace_days_challenger, metric_champion = excluded.metric_champion,
    metric_challenger = excluded.metric_challenger, wape_champion = excluded.wape_champion,
    wape_challenger = excluded.wape_challenger, diff = excluded.diff, ci_low = excluded.ci_low,
    ci_high = excluded.ci_high, relative_diff = excluded.relative_diff, relative_ci_low = excluded.relative_ci_low,
    relative_ci_high = excluded.relative_ci_high, confidence = excluded.confidence, verdict = excluded.verdict,
    champion_version = excluded.champion_version, challenger_version = excluded.challenger_version,
    mlflow_run_id = excluded.mlflow_run_id, details = excluded.details, computed_at = now()
""")


def assign_snapshot_arms(conn: sa.Connection, prediction_type: str, as_of: date, share: float, salt: str,
                         workspaces: list[str] | None = None) -> int:
    """Label the just-taken snapshots of ``as_of`` with each workspace's arm (``core.arms.arm_of`` on the
    workspace id), in the publisher's transaction, so realised accuracy is scored per arm. Returns the rows
    moved to the challenger arm; with ``share == 0`` every row stays ``champion``. ``workspaces`` (UUIDs): only
    theirs (one workspace shard of the set)."""
    params = {"type": prediction_type, "as_of": as_of, "workspaces": workspaces}
    only = " and (cast(:workspaces as uuid[]) is null or workspace_id = any(cast(:workspaces as uuid[])))"
    ids = conn.execute(sa.text("select distinct workspace_id::text from analytics.prediction_snapshots"
                               " where prediction_type = :type and as_of_date = :as_of" + only), params).scalars().all()
    challengers = [w for w in ids if arm_of(w, share, salt) == CHALLENGER_ARM]
    conn.execute(sa.text("update analytics.prediction_snapshots set arm = :champion where prediction_type = :type"
                         " and as_of_date = :as_of and arm <> :champion" + only), {**params, "champion": CHAMPION_ARM})
    if not challengers:
        return 0
    return conn.execute(sa.text(
        "update analytics.prediction_snapshots set arm = :arm where prediction_type = :type and as_of_date = :as_of"
        " and workspace_id = any(cast(:ids as uuid[]))"), {**params, "arm": CHALLENGER_ARM, "ids": challengers}).rowcount


def arm_accuracy(engine: Engine, prediction_type: str, run_date: date, window_days: int) -> tuple[pd.DataFrame, dict]:
    """Per workspace × arm sums of realised accuracy over ``(run_date - window_days, run_date]``, and the
    version that served each arm most recently."""
    params = {"type": prediction_type, "since": run_date - timedelta(days=window_days), "until": run_date}
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(_PER_WORKSPACE, params).mappings().all(),
                             columns=["workspace_id", "arm", "abs_error", "naive_abs_error", "actual_total",
                                      "workspace_days"])
        versions = dict(conn.execute(_ARM_VERSIONS, params).all())
    for col in ("abs_error", "naive_abs_error", "actual_total"):
        frame[col] = frame[col].astype(float)
    return frame, versions


def compare_arms(engine: Engine, settings: Settings, *, kind: str, prediction_type: str, model_name: str | None,
                 run_date: date) -> dict:
    """Compare the arms for one kind and date, record the comparison and any promotion it earns (module doc).

    A kind with no realised accuracy in the window (not run, nothing scored yet) records nothing."""
    frame, versions = arm_accuracy(engine, prediction_type, run_date, settings.ab_window_days)
    if frame.empty:
        return {"kind": kind, "run_date": run_date.isoformat(), "verdict": None, "promote": False,
                "reason": f"no realised accuracy of {prediction_type} in the last {settings.ab_window_days} days"}
    result = compare_arm_frames(frame, min_workspace_days=settings.ab_min_workspace_days,
                                min_improvement=settings.ab_min_improvement, n_boot=settings.ab_bootstrap_samples,
                                confidence=CONFIDENCE, seed=0)
    return _record(engine, settings, kind=kind, prediction_type=prediction_type, model_name=model_name,
                   run_date=run_date, result=result, versions=versions)


def compare_outcome_arms(engine: Engine, settings: Settings, *, kind: str, prediction_type: str,
                         model_name: str | None, run_date: date, outcomes: pd.DataFrame | None) -> dict:
    """The A/B comparison of a classification kind (churn) on its realised Brier score (``models.promotion.
    compare_brier_arms``: per workspace × arm the Brier sums of ``outcomes``, the same seeded workspace bootstrap,
    each arm needing ``ab_min_workspace_days`` scored rows), recorded like ``compare_arms``.

    ``outcomes``: the kind's realised outcomes whose windows closed in the last ``ab_window_days`` (columns
    ``workspace_id, arm, model_version, as_of_date, probability, outcome``); none records nothing."""
    if outcomes is None or len(outcomes) == 0:
        return {"kind": kind, "run_date": run_date.isoformat(), "verdict": None, "promote": False,
                "reason": f"no realised outcomes of {prediction_type} in the last {settings.ab_window_days} days"}
    p, y = outcomes["probability"].astype(float), outcomes["outcome"].astype(float)
    per = (outcomes.assign(brier=(p - y) ** 2).groupby(["workspace_id", "arm"], as_index=False)
           .agg(brier_sum=("brier", "sum"), n=("brier", "size")))
    result = compare_brier_arms(per, min_scored=settings.ab_min_workspace_days,
                                min_improvement=settings.ab_min_improvement, n_boot=settings.ab_bootstrap_samples,
                                confidence=CONFIDENCE, seed=0)
    latest = outcomes.sort_values("as_of_date").groupby("arm")["model_version"].last()  # most recent per arm
    return _record(engine, settings, kind=kind, prediction_type=prediction_type, model_name=model_name,
                   run_date=run_date, result=result, versions={str(a): str(v) for a, v in latest.items()})


def _record(engine: Engine, settings: Settings, *, kind: str, prediction_type: str, model_name: str | None,
            run_date: date, result: ArmComparison, versions: dict) -> dict:
    """Upsert the comparison into ``analytics.ab_comparisons``, log it to MLflow and record the ``promote``
    decision it earns (module docstring); returns the row with ``promote`` and ``reason``."""
    champ = champion_version(model_name, settings) if model_name else None
    champion = str(champ.version) if champ is not None else versions.get(CHAMPION_ARM)
    challenger = versions.get(CHALLENGER_ARM)
    details = {"share": settings.ab_challenger_share, "salt": settings.ab_salt, "reason": result.reason,
               "arm_versions": versions, "model_name": model_name}
    run_id = _log_mlflow(settings, kind, run_date, result, champion, challenger)
    row = {**result.as_dict(), "kind": kind, "run_date": run_date, "prediction_type": prediction_type,
           "window_days": settings.ab_window_days, "champion_version": champion, "challenger_version": challenger,
           "mlflow_run_id": run_id}
    promote = result.verdict == CHALLENGER_BETTER and model_name is not None and challenger not in (None, champion)
    if result.verdict == CHALLENGER_BETTER and not promote:
        details["note"] = (f"challenger arm served by v{challenger}, the champion: nothing to promote"
                           if challenger == champion else "no registered model to promote")
    with engine.begin() as conn:
        conn.execute(_UPSERT, {**{k: row.get(k) for k in _UPSERT_KEYS}, "details": json.dumps(json_ready(details))})
        if promote:
            figures = {**result.as_dict(), "champion_version": champion, "window_days": settings.ab_window_days}
            record_decision(conn, kind=kind, model_name=model_name, version=challenger, source=AB_REALISED,
                            run_date=run_date, decision=PROMOTE, reason=result.reason, figures=figures)
            conn.execute(sa.text(
                "update analytics.ml_models set performance_metrics = performance_metrics"
                " || jsonb_build_object('ab_decision', cast(:figures as jsonb)) where model_name = :n and version = :v"),
                {"n": model_name, "v": challenger,
                 "figures": json.dumps(json_ready({**figures, "decision": PROMOTE, "reason": result.reason}))})
    if promote:
        tag_decision(settings, model_name, challenger, PROMOTE, result.reason, figures, prefix="ab_")
        log.info("%s: A/B earned v%s a promotion, applied at the next publish (%s)", kind, challenger, result.reason)
    return {**row, "run_date": run_date.isoformat(), "promote": promote, "reason": result.reason}


_UPSERT_KEYS = ("kind", "run_date", "prediction_type", "window_days", "metric", "workspaces_champion",
                "workspaces_challenger", "workspace_days_champion", "workspace_days_challenger", "metric_champion",
                "metric_challenger", "wape_champion", "wape_challenger", "diff", "ci_low", "ci_high", "relative_diff",
                "relative_ci_low", "relative_ci_high", "confidence", "verdict", "champion_version",
                "challenger_version", "mlflow_run_id")


def _log_mlflow(settings: Settings, kind: str, run_date: date, result: ArmComparison, champion: str | None,
                challenger: str | None) -> str:
    """One MLflow run per kind and date (a re-run logs into the same run); returns its id."""
    import mlflow

    with keyed_run(settings, EXPERIMENT, {"pae_ab_key": f"{kind}:{run_date.isoformat()}"},
                   f"ab {kind} {run_date.isoformat()}") as run:
        mlflow.set_tags({"kind": kind, "run_date": run_date.isoformat(), "verdict": result.verdict,
                         "champion_version": str(champion), "challenger_version": str(challenger)})
        mlflow.log_metrics({k: float(v) for k, v in result.as_dict().items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None})
        return run.info.run_id
