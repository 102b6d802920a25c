"""Retraining, apart from nightly scoring: train a new model version of a kind and record why it ran.

A retrain of the consumption kind runs what the nightly run did every night before training was split from
scoring: per shard the holdout evaluation, the rolling-origin backtests that choose each series' member weights,
the conformal calibration and the production fits (``pipelines.consumption.forecast.train_shard``); then one
merge tracks the run in MLflow with its scoring artifact and registers the version with its decision (``promote``
or ``keep``, ``ConsumptionKind.finalize_training``). It publishes nothing: the next nightly run scores with the
version to serve (``registry.serving_version``: a newer ``promote`` version, else the champion), and publishing
those rows moves the ``champion`` alias.

Every retrain is a row of ``analytics.retrain_runs`` (``sql/017_retraining.sql``) with its reason:

* ``schedule``: the weekly retrain DAG (``dags/predictive_analytics_retrain.py``, ``PAE_RETRAIN_SCHEDULE``) or a
  champion older than ``retrain_every_days``;
* ``drift`` / ``accuracy``: requested by the nightly drift check (``pipelines.drift``) as a pending row, which the
  next ``pae retrain`` or retrain DAG run picks up (the nightly DAG triggers the retrain DAG when one is pending);
* ``manual``: ``pae retrain``; ``no-champion``: there was none to score with.

Steps take and return plain values, like ``pipelines.nightly``, so the DAG can map the shards over workers.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.settings import Settings, get_settings, limit_threads

log = logging.getLogger(__name__)

from pipelines.retrain_runs import REASONS, pending_retrain


def retrainable_kinds() -> list[str]:
    """Kinds whose training is split from scoring: their ``KIND`` implements ``RetrainableKind``."""
    from pipelines.kinds import get_kind, kind_names

    return [k for k in kind_names() if hasattr(get_kind(k), "finalize_training")]


def _check(kind: str, reason: str) -> None:
    retrainable = retrainable_kinds()
    if kind not in retrainable:
        raise ValueError(f"retraining is split from scoring for {retrainable} only, not {kind!r} "
                         "(the other kinds still train in the nightly run)")
    if reason not in REASONS:
        raise ValueError(f"unknown retrain reason {reason!r}; choose from {list(REASONS)}")


def latest_features_date(engine: Engine) -> date:
    """The last date whose features step succeeded: what a retrain trains through by default."""
    with engine.connect() as conn:
        d = conn.execute(sa.text("select max(logical_date) from analytics.pipeline_runs"
                                 " where step = 'features' and status = 'success'")).scalar()
    if d is None:
        raise ValueError("no features were built yet: run `pae run --date D` (or `pae features --date D`) first, "
                         "or pass --date")
    return d


def start_retrain(kind: str, reason: str, run_date: str | None = None, settings: Settings | None = None) -> dict:
    """Open the retrain's record (taking over a pending request of the kind, whose reason it keeps);
    returns ``{retrain_id, run_date, reason}``."""
    from core.db import get_engine, migrate

    _check(kind, reason)
    settings = settings or get_settings()
    engine = get_engine(settings)
    migrate(engine)
    d = date.fromisoformat(run_date) if run_date else latest_features_date(engine)
    pending = pending_retrain(engine, kind)
    with engine.begin() as conn:
        if pending:
            conn.execute(sa.text(
                "update analytics.retrain_runs set status = 'running', started_at = now(), trained_through = :d,"
                " figures = figures || jsonb_build_object('run_by', cast(:by as text)) where retrain_id = :id"),
                {"d": d, "by": reason, "id": pending["retrain_id"]})
            retrain_id, reason = pending["retrain_id"], pending["reason"]
        else:
            retrain_id = conn.execute(sa.text(
                "insert into analytics.retrain_runs (kind, reason, status, requested_for, started_at, trained_through)"
                " values (:kind, :reason, 'running', :d, now(), :d) returning retrain_id"),
                {"kind": kind, "reason": reason, "d": d}).scalar()
    log.info("retrain %s of %s through %s (%s)", retrain_id, kind, d, reason)
    return {"retrain_id": int(retrain_id), "run_date": d.isoformat(), "reason": reason, "kind": kind}


def start_retrains(kinds: str, reason: str, run_date: str | None = None,
                   settings: Settings | None = None) -> list[dict]:
    """``start_retrain`` for each kind of ``kinds`` (comma-separated, or ``all``: every retrainable kind)."""
    names = retrainable_kinds() if kinds in ("all", "", None) else [k.strip() for k in kinds.split(",") if k.strip()]
    for kind in names:
        _check(kind, reason)
    return [start_retrain(kind, reason, run_date, settings) for kind in names]


def retrain_work(runs: list[dict], settings: Settings | None = None) -> list[dict]:
    """Every (kind, shard) training unit of the started runs: what the retrain DAG maps over."""
    return [{"kind": r["kind"], "retrain_id": r["retrain_id"], "run_date": r["run_date"], "shard": s}
            for r in runs for s in retrain_shards(r["kind"], settings)]


def retrain_shards(kind: str, settings: Settings | None = None) -> list[int]:
    from pipelines.kinds import get_kind

    _check(kind, "manual")
    return list(get_kind(kind).train_shards(settings or get_settings()))


def retrain_shard_step(run_date: str, shard: int, settings: Settings | None = None,
                       kind: str = "consumption") -> dict:
    """Train one shard of ``kind`` (e.g. consumption: holdout, backtests, weights, calibration, fits); returns its
    reference (JSON-ready; ``n_rows`` > 0 when it trained on anything)."""
    from core.db import get_engine
    from pipelines.kinds import get_kind

    settings = settings or get_settings()
    limit_threads(settings.threads)
    from pipelines.results import json_ready, share_ref

    ref = get_kind(kind).train_shard(settings, get_engine(settings), date.fromisoformat(run_date), shard)
    # JSON as XCom carries it, in-process too (the same refs either way); with storage_uri set, the path is the
    # shared copy (pipelines.results)
    return share_ref(json_ready(ref), settings)


def finish_retrain(retrain_id: int, run_date: str, refs: list[dict], started: float | None = None,
                   settings: Settings | None = None, kind: str = "consumption") -> dict:
    """Merge, track, register and promote; record the result (figures, version, decision) on the retrain row."""
    from core.db import get_engine
    from pipelines.kinds import get_kind

    KIND = get_kind(kind)
    settings = settings or get_settings()
    engine = get_engine(settings)
    d = date.fromisoformat(run_date)
    refs = [r for r in refs if r.get("n_rows")]
    if not refs:
        return _close(engine, retrain_id, "failed", {}, None, None, "no workspace had history to train on")
    from pipelines.results import localize_refs

    result = KIND.finalize_training(settings, engine, d, localize_refs(refs, settings))
    promotion = result.details.get("promotion", {})
    figures = {**{k: v for k, v in (result.metrics or {}).items()}, "promotion": promotion,
               "train_seconds": round(sum(r.get("seconds", 0) for r in refs), 1),
               "shards": len(refs), "workspaces": sum(r.get("n_workspaces", 0) for r in refs),
               "mlflow_run_id": result.mlflow_run_id}
    if started is not None:
        figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    decision = promotion.get("decision") or ("promote" if promotion.get("promoted") else "keep")
    return _close(engine, retrain_id, "success", figures, result.model_version, decision, None)


def fail_retrain(retrain_id: int, error: str, settings: Settings | None = None) -> dict:
    """Mark a started retrain failed (the retrain DAG's failure task); a finished one is left as it is."""
    from core.db import get_engine

    engine = get_engine(settings or get_settings())
    with engine.connect() as conn:
        status = conn.execute(sa.text("select status from analytics.retrain_runs where retrain_id = :id"),
                              {"id": retrain_id}).scalar()
    if status in ("success", "failed"):
        return {"retrain_id": retrain_id, "status": status, "unchanged": True}
    return _close(engine, retrain_id, "failed", {}, None, None, error)


def _close(engine: Engine, retrain_id: int, status: str, figures: dict, version: str | None, decision: str | None,
           error: str | None) -> dict:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "update analytics.retrain_runs set status = :status, finished_at = now(),"
            " figures = figures || cast(:figures as jsonb), model_version = :v, decision = :decision, error = :error"
            " where retrain_id = :id"),
            {"status": status, "figures": json.dumps(figures, default=str), "v": version, "decision": decision,
             "error": error, "id": retrain_id})
    return {"retrain_id": retrain_id, "status": status, "model_version": version, "decision": decision,
            "error": error, "figures": figures}


def retrain(kind: str = "consumption", reason: str = "manual", run_date: str | None = None,
            settings: Settings | None = None) -> dict:
    """The whole retrain in one process (``pae retrain``): start, every shard, finish. A failure is recorded
    on the row (status ``failed``) and raised."""
    from core.db import get_engine

    settings = settings or get_settings()
    started = time.perf_counter()
    run = start_retrain(kind, reason, run_date, settings)
    try:
        refs = [retrain_shard_step(run["run_date"], s, settings, kind) for s in retrain_shards(kind, settings)]
        out = finish_retrain(run["retrain_id"], run["run_date"], refs, started, settings, kind)
    except Exception as exc:
        _close(get_engine(settings), run["retrain_id"], "failed", {}, None, None, f"{type(exc).__name__}: {exc}")
        raise
    return {**out, "reason": run["reason"], "run_date": run["run_date"], "kind": kind}


def add_retrain_parser(sub) -> None:
    """Register ``pae retrain`` on the ``pae`` parser's subparsers."""
    r = sub.add_parser("retrain", help="train new model versions now; records why in analytics.retrain_runs; "
                                       "a pending drift/accuracy request is taken over")
    r.add_argument("--kinds", default="all", help="comma-separated kinds whose training is split from scoring "
                                                  "(default: all of them)")
    r.add_argument("--reason", default="manual", choices=REASONS, help="why it runs (default: manual)")
    r.add_argument("--date", default=None, help="train on data through this date (default: the last features date)")
    r.set_defaults(func=_cmd_retrain)


def _cmd_retrain(args) -> int:
    import sys

    kinds = retrainable_kinds() if args.kinds == "all" else [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        try:
            _check(kind, args.reason)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for kind in kinds:
        print(json.dumps(retrain(kind, args.reason, args.date), default=str), flush=True)
    return 0
