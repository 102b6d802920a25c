"""The nightly run for one logical date ``D``, as steps that take and return plain values.

Each ``*_step`` is what one Airflow task calls (``dags/predictive_analytics_nightly.py``); ``run_nightly``
calls them in order without Airflow (``pae run --date D``). Steps exchange references only: dates, shard
numbers, paths (under ``data_dir``, or URIs under ``runs_root`` with ``storage_uri`` set: ``pipelines.results``)
and MLflow run ids; data stays in the stores. Every step records itself
in ``analytics.pipeline_runs``. Nothing is published before every gate and model step has succeeded, and
publishing is one transaction per prediction set and workspace shard, so a failed run leaves the previous
predictions served (a failed shard: its workspaces' previous predictions; each workspace's rows are one run's).
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone

from core.contracts import RunStatus
from core.db import get_engine, migrate
from core.runs import recorded_step
from core.settings import Settings, get_settings, limit_threads
from core.storage import read_frame
from pipelines.results import KindResult, PublishResult, ShardResult, localize_shards, share_kind, share_shard

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
        s = extract(engine, d, settings.staging_dir, settings.late_window_days, settings.backfill_days)
        rec.row_counts = {"rows": s.rows, "days": len(s.dates)}
        rec.details = s.as_dict()
    return s.as_dict()


def validate_raw_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.ingest.extract import read_staged_events
    from pipelines.ingest.gate import daily_row_counts, validate_raw_events
    from pipelines.quality import enforce

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
    """The whole features stage in one process (``pae run``, ``pae features``): refresh, every workspace shard one
    after the other (one shard's aggregates in memory at a time), merge."""
    settings = settings or get_settings()
    refreshed = refresh_features_step(run_date, settings)
    parts = [features_shard_step(run_date, k, refreshed, settings) for k in feature_shards_step(refreshed)]
    return merge_features_step(run_date, refreshed, parts, settings)


def refresh_features_step(run_date: str, settings: Settings | None = None) -> dict:
    """Rebuild the stale months of the daily and hourly aggregates from the staged events; the result names the
    days whose metrics the shards replace and how many workspace shards build the feature sets (``shards``)."""
    from pipelines.features.store import refresh_aggregates

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "features_refresh", d) as rec:
        out = refresh_aggregates(settings.staging_dir, settings.offline_store_dir, d)
        rec.row_counts = {"refreshed_days": len(out["refreshed_days"]), "hourly_days_refreshed": out["hourly_days_refreshed"]}
    return {**out, "shards": settings.shards}


def feature_shards_step(refreshed: dict) -> list[int]:
    """The workspace shards the features stage is mapped over."""
    return list(range(int(refreshed["shards"])))


def features_shard_step(run_date: str, shard: int, refreshed: dict, settings: Settings | None = None) -> dict:
    """Every feature set of one workspace shard: offline parts and this shard's database rows (one transaction)."""
    from pipelines.features.store import build_feature_shard

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    n = int(refreshed["shards"])
    with recorded_step(engine, f"features_{shard}", d) as rec:
        rows = build_feature_shard(engine, settings.offline_store_dir, d,
                                   [date.fromisoformat(x) for x in refreshed["refreshed_days"]], shard, n,
                                   holiday_country=settings.holiday_country,
                                   growth_mau_window_days=settings.growth_mau_window_days)
        rec.row_counts = rows
    return {"shard": shard, "rows": rows}


def merge_features_step(run_date: str, refreshed: dict, parts: list[dict], settings: Settings | None = None) -> dict:
    """Merge the shards' offline parts into each feature set's file as of ``run_date`` and build the platform-wide
    ``agent_daily``; records the ``features`` step with the summed row counts."""
    from pipelines.features.store import FeatureSummary, merge_feature_shards, sum_rows

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "features", d) as rec:
        n = int(refreshed["shards"])
        paths, platform_rows = merge_feature_shards(engine, settings.offline_store_dir, d, n)
        s = FeatureSummary(as_of=d, refreshed_days=len(refreshed["refreshed_days"]), shards=n, offline_paths=paths,
                           rows={"hourly_days_refreshed": refreshed["hourly_days_refreshed"],
                                 **sum_rows([*(p["rows"] for p in parts), platform_rows])})
        rec.row_counts = s.rows
        rec.details = s.as_dict()
    return s.as_dict()


def validate_features_step(run_date: str, settings: Settings | None = None) -> dict:
    from pipelines.features.gate import validate_features
    from pipelines.features.sets import FEATURE_SETS
    from pipelines.features.store import read_offline
    from pipelines.quality import enforce

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, "validate_features", d) as rec:
        frames = {name: read_offline(settings.offline_store_dir, fs, d) for name, fs in FEATURE_SETS.items()}
        missing = [k for k, v in frames.items() if v is None]
        if missing:
            raise RuntimeError(f"feature sets {missing} were not built for {d}; run the features step first")
        # an entity the data does not have (no agents, no user ids) is not an error: the kinds that need
        # it are skipped with a note (``predict_step``); what exists is still gated
        report = validate_features(frames, d, may_be_empty=frozenset(FEATURE_SETS))
        empty = sorted(k for k, v in frames.items() if v.empty)
        rec.details = {"quality": report.as_dict(), "empty_feature_sets": empty}
        rec.row_counts = {k: len(v) for k, v in frames.items()}
        enforce(report)
    return {"passed": True, "rows": {k: len(v) for k, v in frames.items()}, "empty_feature_sets": empty}


def _empty_feature_sets(settings: Settings, d: date, names: tuple[str, ...]) -> list[str]:
    """Feature sets among ``names`` with no rows as of ``d`` (row counts from the Parquet footers)."""
    from core.storage import parquet_rows
    from pipelines.features.sets import FEATURE_SETS
    from pipelines.features.store import offline_path

    return [n for n in names if parquet_rows(offline_path(settings.offline_store_dir, FEATURE_SETS[n], d)) == 0]


def kind_shards_step(kind: str, settings: Settings | None = None) -> list[int]:
    """Shard ids a kind's ``predict_step`` is mapped over (workspaces are assigned by a stable hash)."""
    from pipelines.kinds import get_kind

    return get_kind(kind).shards(settings or get_settings())


def _selected(kind: str, kinds: str | list[str] | None) -> bool:
    from pipelines.kinds import select_kinds

    return kind in select_kinds(kinds)


def predict_step(run_date: str, kind: str, shard: int, kinds: str | list[str] | None = None,
                 settings: Settings | None = None) -> ShardResult:
    """Train, backtest and predict one shard of one kind (skipped when the kind is not selected)."""
    from pipelines.kinds import get_kind

    if not _selected(kind, kinds):
        return ShardResult(kind=kind, shard=shard, status=RunStatus.SKIPPED, details={"reason": "not selected"})
    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    with recorded_step(engine, f"predict_{kind}_{shard}", d) as rec:
        empty = _empty_feature_sets(settings, d, get_kind(kind).feature_sets)
        if empty:
            reason = f"no rows in {', '.join(empty)} as of {d} (e.g. no agents or no user ids in the data): {kind} skipped"
            result = ShardResult(kind=kind, shard=shard, status=RunStatus.INSUFFICIENT_DATA,
                                 details={"status": RunStatus.INSUFFICIENT_DATA, "reason": reason})
        else:
            result = share_shard(get_kind(kind).run_shard(settings, engine, d, shard), settings)
        rec.status = result.status
        rec.row_counts = {"series": result.n_series, "rows": result.n_rows}
        rec.mlflow_run_ids = [result.mlflow_run_id] if result.mlflow_run_id else []
        rec.details = result.model_dump(mode="json")
    return result


def finalize_step(run_date: str, kind: str, shards: list[ShardResult | dict], kinds: str | list[str] | None = None,
                  settings: Settings | None = None) -> KindResult:
    """Merge a kind's shards, track, register and promote; the result says what to publish."""
    from pipelines.kinds import get_kind

    if not _selected(kind, kinds):
        return KindResult(kind=kind, status=RunStatus.SKIPPED, reason="not selected")
    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    results = [ShardResult.model_validate(s) for s in shards]
    with recorded_step(engine, f"finalize_{kind}", d) as rec:
        if results and all(r.status == RunStatus.INSUFFICIENT_DATA for r in results):
            result = KindResult(kind=kind, status=RunStatus.INSUFFICIENT_DATA, reason=results[0].details.get("reason"))
        else:
            merged = get_kind(kind).finalize(settings, engine, d, localize_shards(results, settings))
            result = share_kind(merged, settings)  # the frames it hands to the publisher, shared
            _record_registration(engine, kind, d, result)
        rec.status = result.status
        rec.row_counts = result.counts
        rec.mlflow_run_ids = [result.mlflow_run_id] if result.mlflow_run_id else []
        rec.details = result.model_dump(mode="json")
    return result


def _model_name(result: KindResult) -> str | None:
    """The registered model behind a kind's result: its registration decision's, else the kind's ``model_name``."""
    from pipelines.kinds import get_kind

    return (result.details.get("promotion") or {}).get("model_name") or getattr(get_kind(result.kind), "model_name", None)


def _record_registration(engine, kind: str, d: date, result: KindResult) -> None:
    """The kind's registration decision in ``analytics.model_decisions`` (kinds that call ``registry.promote``
    directly, e.g. churn, get their row here; ``register_version`` already wrote it, this fills the kind)."""
    from pipelines.registry import REGISTRATION, record_decision

    promotion = result.details.get("promotion")
    if not promotion or not promotion.get("version") or promotion.get("decision") not in ("promote", "keep"):
        return
    with engine.begin() as conn:
        record_decision(conn, kind=kind, model_name=promotion["model_name"], version=str(promotion["version"]),
                        source=REGISTRATION, run_date=d, decision=promotion["decision"],
                        reason=promotion.get("reason") or "", figures=promotion)


def publish_parts_step(results: list[KindResult | dict], settings: Settings | None = None) -> list[dict]:
    """What ``publish_part_step`` is mapped over: each publishable kind's set in ``settings.shards`` workspace shards
    (a kind with extra sets, e.g. agent errors' alerts, in one: they are published with it, in one transaction)."""
    settings = settings or get_settings()
    parts = []
    for r in (KindResult.model_validate(x) for x in results):
        if r.publishable:
            n = _publish_shards(r, settings)
            ref = r.model_dump(mode="json", include={"kind", "status", "publish_to", "prediction_type", "frame_path",
                                                     "extra_sets"})
            parts += [{"result": ref, "shard": k, "shards": n} for k in range(n)]
    return parts


def _publish_shards(result: KindResult, settings: Settings) -> int:
    return 1 if result.extra_sets else settings.shards


def _shard_chunks(path, shard: int, shards: int) -> tuple[object, list[str] | None]:
    """One workspace shard's rows of a kind's prediction frame (``core.shards``: the hash every step splits by) as
    pandas chunks, read row group by row group (a task never holds the whole set, nor its whole part), and the
    shard's workspace UUIDs (None for the whole set)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from core.shards import shard_members
    from core.storage import iter_parquet, read_parquet
    from pipelines.publish import workspace_uuids

    only, workspaces = None, None
    if shards > 1:
        ids = read_parquet(path, columns=["workspace_id"]).column("workspace_id")
        members = shard_members(ids, shard, shards)
        only = pc.field("workspace_id").isin(pa.array(members, type=ids.type))
        workspaces = workspace_uuids(members)
    return (t.to_pandas() for t in iter_parquet(path, only)), workspaces


def publish_part_step(run_date: str, part: dict, settings: Settings | None = None) -> PublishResult:
    """Publish one workspace shard of one kind's prediction set in one transaction (the one publisher,
    ``pipelines.publish``): its workspaces' rows are replaced, their monitored horizons snapshotted and labelled
    with their A/B arm. A re-run gives the same rows; a failure leaves the shard's workspaces on their previous
    predictions, every workspace's rows come from one run."""
    from pipelines.ab import assign_snapshot_arms
    from pipelines.kinds import get_kind
    from pipelines.monitor import snapshot_predictions, snapshot_scope
    from pipelines.publish import publish_churn_scores, publish_extra, publish_predictions

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    result, shard, shards = KindResult.model_validate(part["result"]), int(part["shard"]), int(part["shards"])
    with recorded_step(engine, f"publish_{result.kind}_{shard}", d) as rec:
        chunks, workspaces = _shard_chunks(settings.storage_path(result.frame_path), shard, shards)
        with engine.begin() as conn:
            if result.publish_to == "predictions":
                stats = publish_predictions(conn, chunks, result.prediction_type, d)
                snapshot_predictions(conn, result.prediction_type, d,  # horizons kept for monitoring
                                     snapshot_scope(get_kind(result.kind)), workspaces)
                assign_snapshot_arms(conn, result.prediction_type, d, settings.ab_challenger_share,
                                     settings.ab_salt, workspaces)
            else:
                stats = publish_churn_scores(conn, chunks, d, whole_set=shards == 1)
            extra = {name: publish_extra(conn, name, read_frame(settings.storage_path(path)), d)  # same txn
                     for name, path in result.extra_sets.items()}
        out = PublishResult(kind=result.kind, status=RunStatus.SUCCESS, extra=extra, **stats)
        rec.row_counts = {"rows": out.rows, "changed": out.changed, "deleted_stale": out.deleted_stale}
        rec.details = {"shard": shard, "shards": shards, **out.model_dump(mode="json")}
    return out


def _distinct(path, column: str) -> list:
    """The distinct values of one column of a Parquet file (a narrow read, counted in Arrow)."""
    import pyarrow.compute as pc

    from core.storage import read_parquet

    return pc.unique(read_parquet(path, columns=[column]).column(column)).to_pylist()


def publish_step(run_date: str, results: list[KindResult | dict], settings: Settings | None = None,
                 parts: list[PublishResult | dict] | None = None) -> list[PublishResult]:
    """Complete the publishing of each kind's prediction set after its shards (``publish_part_step``; run here, one
    after another, when ``parts`` is None) committed: sums their counts, drops the churn scores of workspaces the
    set no longer has, and moves the ``champion`` alias to the version its decisions earned
    (``pipelines.registry.apply_published``): never before every shard of its predictions is served.
    """
    from pipelines.publish import drop_unscored_workspaces
    from pipelines.registry import apply_published

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    kinds = [KindResult.model_validate(r) for r in results]
    if parts is None:
        parts = [publish_part_step(run_date, p, settings) for p in publish_parts_step(kinds, settings)]
    by_kind: dict[str, list[PublishResult]] = {}
    for p in (PublishResult.model_validate(p) for p in parts):
        by_kind.setdefault(p.kind, []).append(p)
    out: list[PublishResult] = []
    champions: dict[str, dict] = {}
    with recorded_step(engine, "publish", d) as rec:
        for result in kinds:
            if not result.publishable:
                out.append(PublishResult(kind=result.kind, status=result.status, reason=result.reason))
                continue
            shard_results = by_kind.get(result.kind, [])
            if len(shard_results) != _publish_shards(result, settings):
                raise RuntimeError(f"{result.kind}: {len(shard_results)} published shard(s), expected "
                                   f"{_publish_shards(result, settings)}; nothing to complete")
            path = settings.storage_path(result.frame_path)
            deleted = 0
            if result.publish_to != "predictions" and len(shard_results) > 1:
                with engine.begin() as conn:
                    deleted = drop_unscored_workspaces(conn, _distinct(path, "workspace_id"), d)
            out.append(PublishResult(kind=result.kind, status=RunStatus.SUCCESS,
                                     rows=sum(p.rows for p in shard_results),
                                     changed=sum(p.changed for p in shard_results),
                                     deleted_stale=deleted + sum(p.deleted_stale for p in shard_results),
                                     extra={k: v for p in shard_results for k, v in p.extra.items()}))
            model_name = _model_name(result)
            if model_name and result.model_version:  # every shard committed: the alias may move now
                versions = [str(v) for v in _distinct(path, "model_version") if v is not None]
                champions[result.kind] = apply_published(engine, settings, model_name=model_name,
                                                         version=str(result.model_version), served_versions=versions)
        rec.row_counts = {p.kind: p.rows for p in out}
        rec.details = {"published": [p.model_dump(mode="json") for p in out], "champions": champions}
    return out


def monitor_step(run_date: str, settings: Settings | None = None) -> dict:
    """Score earlier predictions whose days have now happened (realised accuracy) and flag kinds whose
    realised accuracy is worse than their backtest promised; generic over kinds (``pipelines/monitor.py``).
    Each kind's realised figures over the window are logged to MLflow (experiment ``realised-accuracy``). Then
    retention (``prune_history``): old prediction snapshots and finished on-demand jobs are deleted, counted in
    the step's ``row_counts`` (``deleted_prediction_snapshots``, ``deleted_prediction_jobs``)."""
    from pipelines.kinds import get_kind, kind_names
    from pipelines.monitor import monitor_kind

    settings, engine = _ctx(settings)
    d = date.fromisoformat(run_date)
    out: dict = {"scored_rows": {}, "outcome_rows": {}, "alerts": [], "alert_kinds": [], "mlflow_run_ids": {}}
    with recorded_step(engine, "monitor", d) as rec:
        for name in kind_names():
            t0 = time.perf_counter()
            result = monitor_kind(settings, engine, get_kind(name), d)
            if not result:
                continue
            out.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 2)
            for key in ("scored_rows", "outcome_rows"):
                if key in result:
                    out[key][name] = result[key]
            out["alerts"] += [{"kind": name, **a} for a in result["alerts"]]
            out.setdefault("kinds", {})[name] = {"prediction_type": result["prediction_type"],
                                                 "model_name": result["model_name"], "alert": result["alert"]}
            if result["alert"]:
                out["alert_kinds"].append(name)
                out.setdefault("retrain_requested", {})[name] = _request_accuracy_retrain(engine, name, d, result)
            if result["summary"]:
                t0 = time.perf_counter()
                out["mlflow_run_ids"][name] = _log_realised(settings, name, d, result)
                out["seconds"]["mlflow"] = round(out["seconds"].get("mlflow", 0) + time.perf_counter() - t0, 2)
        out["deleted"] = prune_history(settings, engine, d)
        rec.row_counts = {**out["scored_rows"], **{f"{k}_outcomes": v for k, v in out["outcome_rows"].items()},
                          **{f"deleted_{k}": v for k, v in out["deleted"].items()}}
        if settings.ab_challenger_share > 0:
            out["ab"] = _compare_arms(engine, settings, d)
        rec.mlflow_run_ids = sorted(out["mlflow_run_ids"].values())
        rec.details = out
    return out


def prune_history(settings: Settings, engine, d: date) -> dict[str, int]:
    """Retention, as of the run date ``d``: delete prediction snapshots whose predicted day is more than
    ``snapshot_retention_days`` old and on-demand jobs finished more than ``job_retention_days`` ago (rows
    deleted per table). Re-running for ``d`` deletes nothing more."""
    from pipelines.jobs.queue import delete_finished_jobs
    from pipelines.monitor import prune_snapshots

    jobs_before = datetime.combine(d + timedelta(days=1 - settings.job_retention_days), datetime.min.time(),
                                   tzinfo=timezone.utc)
    return {"prediction_snapshots": prune_snapshots(engine, d, settings.snapshot_retention_days),
            "prediction_jobs": delete_finished_jobs(engine, jobs_before)}


def _request_accuracy_retrain(engine, kind: str, d: date, result: dict) -> int | None:
    """A kind whose realised accuracy broke its backtest's promise gets a pending ``accuracy`` retrain (merged into
    a pending request if there is one); the nightly DAG then triggers the retrain DAG for it."""
    from pipelines.kinds import get_kind
    from pipelines.retrain_runs import request_retrain

    if not hasattr(get_kind(kind), "finalize_training"):
        return None
    figures = {"alerts": [a for a in result["alerts"] if a.get("alert")]}
    return request_retrain(engine, kind, "accuracy", d, figures)


def _compare_arms(engine, settings: Settings, d: date) -> dict:
    """The A/B comparison of every kind scored by realised accuracy, or by realised outcomes (``ab_outcomes``:
    churn's Brier score) (``pipelines/ab.py``)."""
    import sys

    from pipelines.ab import compare_arms, compare_outcome_arms
    from pipelines.kinds import get_kind, kind_names

    out = {}
    for name in kind_names():
        kind = get_kind(name)
        outcomes = getattr(kind, "ab_outcomes", None)  # a classification kind (churn): compared on Brier
        if not getattr(kind, "realised_sql", None) and outcomes is None:
            continue
        model_name = getattr(kind, "model_name", None) or getattr(sys.modules[type(kind).__module__], "MODEL_NAME", None)
        if outcomes is not None:
            ab = compare_outcome_arms(engine, settings, kind=name, prediction_type=kind.prediction_type,
                                      model_name=model_name, run_date=d, outcomes=outcomes(settings, engine, d))
        else:
            ab = compare_arms(engine, settings, kind=name, prediction_type=kind.prediction_type,
                              model_name=model_name, run_date=d)
        out[name] = {k: ab.get(k) for k in ("verdict", "relative_diff", "relative_ci_low", "relative_ci_high",
                                            "workspace_days_champion", "workspace_days_challenger", "promote",
                                            "reason")}
    return out


def _log_realised(settings: Settings, kind: str, d: date, result: dict) -> str:
    """One MLflow run per kind and night (the same run again when the night is re-run)."""
    import mlflow

    from pipelines.registry import keyed_run

    with keyed_run(settings, "realised-accuracy", {"pae.kind": kind, "pae.run_date": d.isoformat()},
                   f"{kind} realised {d}") as run:
        mlflow.set_tag("pae.alert", str(result["alert"]))
        mlflow.log_metrics({k: v for k, v in result["summary"].items() if v == v}  # NaN-free
                           | {"alert": float(result["alert"])}
                           | {k: float(result[k]) for k in ("scored_rows", "outcome_rows") if k in result})
        return run.info.run_id


def record_run_step(run_date: str, published: list[PublishResult | dict], settings: Settings | None = None) -> dict:
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
                       "published": [PublishResult.model_validate(p).model_dump(mode="json") for p in published]}
        rec.row_counts = {s["step"]: s["row_counts"] for s in steps}
        rec.mlflow_run_ids = sorted({r for s in steps for r in (s["mlflow_run_ids"] or [])})
    return {"run_date": run_date, "steps": len(steps)}


def run_nightly(run_date: date, settings: Settings | None = None,
                kinds: str | list[str] | None = None) -> list[PublishResult]:
    """The DAG's steps in order, without Airflow. The first run for a date backfills what it needs.

    ``kinds`` selects prediction kinds (default: all, see ``pipelines.kinds``).
    """
    from pipelines.kinds import select_kinds

    from core.progress import progress

    settings = settings or get_settings()
    d = run_date.isoformat()
    selected = select_kinds(kinds)
    plans = {kind: kind_shards_step(kind, settings) for kind in selected}
    with progress(f"nightly run {d}", 6 + sum(len(s) + 1 for s in plans.values()), "steps") as advance:
        for name, step in (("extract", extract_step), ("validate_raw", validate_raw_step),
                           ("features", features_step), ("validate_features", validate_features_step)):
            advance(0, f"{d}: {name}")
            step(d, settings)
            advance()
        results = []
        for kind, shard_ids in plans.items():
            shards = []
            for k in shard_ids:
                advance(0, f"{d}: {kind} shard {k + 1}/{len(shard_ids)}")
                shards.append(predict_step(d, kind, k, selected, settings))
                advance()
            advance(0, f"{d}: {kind} finalize")
            results.append(finalize_step(d, kind, shards, selected, settings))
            advance()
        advance(0, f"{d}: publish")
        published = publish_step(d, results, settings)
        monitor_step(d, settings)
        advance()
        record_run_step(d, published, settings)
        advance()
    return published
