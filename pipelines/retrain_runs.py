"""The record of retrains (``analytics.retrain_runs``, ``sql/017_retraining.sql``): pending requests and
inline trainings. Kept apart from ``pipelines.retrain`` (which runs retrains through the kinds) so that kinds and
the drift check can record requests without importing the kinds' runner."""
from __future__ import annotations

import json
import logging
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

REASONS = ("schedule", "drift", "accuracy", "manual", "no-champion")
log = logging.getLogger(__name__)


def request_retrain(engine: Engine, kind: str, reason: str, requested_for: date, figures: dict) -> int:
    """Record a pending retrain of ``kind`` (at most one per kind: a later request adds its figures to the
    pending one, keeping the first reason); returns its id."""
    if reason not in REASONS:
        raise ValueError(f"unknown retrain reason {reason!r}; choose from {list(REASONS)}")
    with engine.begin() as conn:
        row = conn.execute(sa.text(
            "insert into analytics.retrain_runs (kind, reason, status, requested_for, figures)"
            " values (:kind, :reason, 'pending', :d, cast(:figures as jsonb))"
            " on conflict (kind) where status = 'pending' do update set"
            " figures = analytics.retrain_runs.figures || jsonb_build_object('later_requests',"
            "   coalesce(analytics.retrain_runs.figures -> 'later_requests', '[]'::jsonb) || jsonb_build_array("
            "     jsonb_build_object('reason', excluded.reason, 'requested_for', excluded.requested_for))),"
            " requested_for = greatest(analytics.retrain_runs.requested_for, excluded.requested_for)"
            " returning retrain_id"),
            {"kind": kind, "reason": reason, "d": requested_for, "figures": json.dumps(figures, default=str)}).one()
    return int(row[0])


def pending_retrain(engine: Engine, kind: str) -> dict | None:
    """The pending retrain request of ``kind``, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "select retrain_id, reason, requested_for, figures from analytics.retrain_runs"
            " where kind = :kind and status = 'pending'"), {"kind": kind}).mappings().one_or_none()
    return dict(row) if row else None


def pending_kinds(engine: Engine) -> list[str]:
    """Kinds with a pending retrain request, by name."""
    with engine.connect() as conn:
        return list(conn.execute(sa.text("select kind from analytics.retrain_runs where status = 'pending'"
                                         " order by kind")).scalars())


def record_inline_retrain(engine: Engine, kind: str, run_date: date, version: str | None, promotion: dict,
                          note: str, seconds: float) -> int:
    """Record a nightly run that had to train (no usable champion) as a finished ``no-champion`` retrain."""
    figures = {"note": note, "promotion": promotion, "train_seconds": seconds, "inline": True}
    with engine.begin() as conn:
        return int(conn.execute(sa.text(
            "insert into analytics.retrain_runs (kind, reason, status, requested_for, started_at, finished_at,"
            " trained_through, figures, model_version, decision)"
            " values (:kind, 'no-champion', 'success', :d, now(), now(), :d, cast(:figures as jsonb), :v, :decision)"
            " returning retrain_id"),
            {"kind": kind, "d": run_date, "figures": json.dumps(figures, default=str), "v": version,
             "decision": promotion.get("decision") or ("promote" if promotion.get("promoted") else "keep")}).scalar())


def request_if_due(engine: Engine, kind: str, run_date: date, version: str, trained_through: date,
                   every_days: int) -> dict:
    """On a scoring night: record a pending ``schedule`` retrain of ``kind`` when the served ``version`` was trained
    through ``trained_through``, ``every_days`` or more before ``run_date``, and no retrain has trained on more
    recent data since (a refused retrain is not asked for again every night). Returns the figures."""
    with engine.connect() as conn:
        retrained = conn.execute(sa.text(
            "select max(trained_through) from analytics.retrain_runs where kind = :k and status in"
            " ('running', 'success') and trained_through <= :d"), {"k": kind, "d": run_date}).scalar()
    latest = max(trained_through, retrained) if retrained else trained_through
    age = (run_date - latest).days
    figures = {"champion": str(version), "trained_through": trained_through.isoformat(),
               "last_retrained_through": latest.isoformat(), "age_days": age, "every_days": every_days,
               "retrain_requested": age >= every_days}
    if figures["retrain_requested"]:
        figures["retrain_id"] = request_retrain(engine, kind, "schedule", run_date, dict(figures))
        log.warning("%s: retrain requested (schedule: data %d days old) for v%s", kind, age, version)
    return figures


def record_inline_training(engine: Engine, kind: str, run_date: date, result, refs: list[dict]):
    """A night that trained inline: record it as a ``no-champion`` retrain (the shards' reasons joined) and note it
    on the kind's result; returns the result."""
    note = "; ".join(sorted({r["train_reason"] for r in refs if r.get("train_reason")}))
    retrain_id = record_inline_retrain(engine, kind, run_date, result.model_version,
                                       result.details.get("promotion", {}), note,
                                       round(sum(r.get("seconds", 0) for r in refs), 1))
    result.details.update(mode="trained inline", train_reason=note, retrain_id=retrain_id)
    return result
