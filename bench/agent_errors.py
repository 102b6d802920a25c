"""Benchmark: agent error-rate alerts replayed as nightly runs, scored against the generator's ground-truth incidents.

The last ``--days`` (120) days of the prepared platform (``bench.prepare``) are replayed one date at a time, in
order, with the real code and only this kind's steps: the ``agent_daily`` feature set as of the date (the features
step's part for this kind), then ``predict_step`` / ``finalize_step`` / ``publish_step`` of ``pipelines.nightly``
with ``kinds=agent_errors`` (score with the served version; when it is due, every ``PAE_AGENT_ERROR_RETRAIN_DAYS`` =
7 days, the night records a pending ``schedule`` retrain, which the replay then runs with ``pipelines.retrain.retrain``
as the retrain DAG would, so the next night serves the new version if its decision is ``promote``; MLflow, registry,
one publish transaction per night). Each night sees the data up to its date only.

Scored against ``ground_truth/incidents.parquet`` (peaks are workspace-local dates; days here are UTC days, most of
each local day falls on the UTC day of the same date):

* recall: share of incidents peaking in the replay (from its 3rd day) with an alert at ``warning`` or above at
  least 2 days before the peak (and at most 14);
* precision: share of alert episodes (a warning-or-above alert with none in the 3 days before it) followed by a
  peak of the same agent's incident within 14 days (the as-of day included);
* lead time: median days from the first alert in the 14 days before a peak to the peak, over alerted incidents;
* false alerts per 100 agent-weeks: episodes not followed by a peak, per 100 weeks of agents with calls in the
  previous 14 days.

The same figures for the three rules users know (``models.error_rates.rules``: a static threshold on yesterday's
rate, a 3-sigma band over 21 days, SRE multiwindow burn-rate alerts) on the same days, with the same minimum-volume
guard, at their default settings and at their best setting in hindsight (chosen on this very ground truth: an
upper bound for them). Also: the model's alerts at each level, recall by traffic, the nightly cost (predict +
finalize + publish) on training and scoring nights, the feature build, and peak memory.

    .venv/bin/python bench/agent_errors.py --workspaces 1000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.common import out_dir, timed_phase  # noqa: E402
from bench.prepare import END, ground_truth_dir, prepared_platform  # noqa: E402

LEAD_MIN, WINDOW, COOLDOWN = 2, 14, 3
TARGETS = {"precision": 0.8, "recall": 0.7, "lead_days": 3.0, "nightly_seconds": 60.0}


# ---- scoring -----------------------------------------------------------------------------------------------------
def episodes(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alert onsets: an alert of an agent with no alert of it in the ``COOLDOWN`` days before."""
    a = alerts[["agent_id", "day"]].drop_duplicates().sort_values(["agent_id", "day"])
    prev = a.groupby("agent_id")["day"].shift(1)
    return a[prev.isna() | ((a["day"] - prev).dt.days > COOLDOWN)]


def score(alerts: pd.DataFrame, incidents: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp,
          exposure_agent_days: float) -> dict:
    """Precision, recall, lead time and false alerts per 100 agent-weeks of (agent_id, day) alerts."""
    inc = incidents[["agent_id", "peak"]]
    on = episodes(alerts)
    m = on.merge(inc, on="agent_id", how="left")
    m["ok"] = (m["peak"] >= m["day"]) & (m["peak"] <= m["day"] + pd.Timedelta(days=WINDOW))
    hit = m.groupby(["agent_id", "day"])["ok"].any()
    scored = inc[(inc["peak"] >= first + pd.Timedelta(days=LEAD_MIN)) & (inc["peak"] <= last)]
    mi = scored.merge(alerts[["agent_id", "day"]], on="agent_id", how="left")
    before = (mi["day"] <= mi["peak"]) & (mi["day"] >= mi["peak"] - pd.Timedelta(days=WINDOW))
    mi["early"] = before & (mi["day"] <= mi["peak"] - pd.Timedelta(days=LEAD_MIN))
    mi["lead"] = np.where(before, (mi["peak"] - mi["day"]).dt.days, np.nan)
    g = mi.groupby(["agent_id", "peak"])
    caught, lead = g["early"].any(), g["lead"].max().dropna()
    false = int((~hit).sum())
    return {"episodes": len(hit), "precision": float(hit.mean()) if len(hit) else float("nan"),
            "recall": float(caught.mean()) if len(caught) else float("nan"), "incidents": len(caught),
            "lead_days": float(lead.median()) if len(lead) else float("nan"),
            "false_per_100_agent_weeks": 100 * false / max(exposure_agent_days / 7, 1e-9), "caught": caught}


def _fmt(v, nd=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def _line(name: str, r: dict) -> str:
    return (f"  {name:<42} precision {_fmt(r['precision'])}  recall {_fmt(r['recall'])}  lead {_fmt(r['lead_days'], 1):>4} d"
            f"  false/100 agent-weeks {_fmt(r['false_per_100_agent_weeks'], 2):>6}  episodes {r['episodes']}")


# ---- the replay (in a child process: wall time and peak RSS) -----------------------------------------------------
def _replay(settings, url: str, dates: list[date]) -> dict:
    import logging

    from core.db import get_engine
    from pipelines.features.builders import build_agent_features
    from pipelines.features.sets import AGENT_DAILY
    from pipelines.features.store import load_daily_aggregates, refresh_daily_aggregates, write_offline
    from pipelines.nightly import finalize_step, predict_step, publish_step
    from pipelines.retrain import retrain
    from pipelines.retrain_runs import pending_retrain

    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    rebuilt = refresh_daily_aggregates(settings.staging_dir, settings.offline_store_dir)
    migration_s = time.perf_counter() - t0
    engine = get_engine(url=url)
    nights = []
    for i, d in enumerate(dates):
        t0 = time.perf_counter()
        agg = load_daily_aggregates(settings.offline_store_dir, d, only=("agent_feature", "workspace_errors"))
        write_offline(settings.offline_store_dir, AGENT_DAILY, d, build_agent_features(agg, d))
        t1 = time.perf_counter()
        shard = predict_step(d.isoformat(), "agent_errors", 0, ["agent_errors"], settings)
        t2 = time.perf_counter()
        result = finalize_step(d.isoformat(), "agent_errors", [shard], ["agent_errors"], settings)
        t3 = time.perf_counter()
        published = publish_step(d.isoformat(), [result], settings)
        t4 = time.perf_counter()
        retrained = None  # training is split from scoring: a pending (schedule) retrain runs as the retrain DAG would
        if pending_retrain(engine, "agent_errors") is not None:
            r0 = time.perf_counter()
            retrained = retrain("agent_errors", "schedule", d.isoformat(), settings)
            retrained["seconds"] = time.perf_counter() - r0
            print(f"    {d}  retrain  {retrained['seconds']:5.1f} s  v{retrained['model_version']} "
                  f"({retrained['decision']})", flush=True)
        nights.append({"retrain": retrained and {k: retrained[k] for k in ("model_version", "decision", "seconds")},
                       "date": d.isoformat(), "features_s": t1 - t0, "predict_s": t2 - t1, "finalize_s": t3 - t2,
                       "publish_s": t4 - t3, "kind_s": t4 - t1, "mode": shard.details.get("mode"),
                       "status": result.status, "reason": result.reason, "version": result.model_version,
                       "train_s": shard.details.get("train_seconds"), "rows": published[0].rows,
                       "metrics": result.metrics, "promotion": result.details.get("promotion")})
        if i % 10 == 0 or shard.details.get("mode") == "trained":
            print(f"    {d}  {shard.details.get('mode') or result.status:<8} kind {t4 - t1:5.1f} s (predict {t2 - t1:4.1f},"
                  f" finalize {t3 - t2:4.1f}, publish {t4 - t3:4.1f})  features {t1 - t0:4.1f} s"
                  + (f"  v{result.model_version} OOT PR-AUC {_fmt(result.metrics.get('oot_pr_auc'))}"
                     if shard.details.get("mode") == "trained" else ""), flush=True)
    return {"nights": nights, "store_migration_s": migration_s, "store_days_rebuilt": len(rebuilt),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run_settings(platform_settings, n: int, retrain_days: int):
    run_dir = out_dir(f"agent_errors_{n}") / "pae"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for sub in ("staging", "offline_store", "rejects"):
        target = (platform_settings.data_dir / sub).resolve()
        target.mkdir(parents=True, exist_ok=True)
        (run_dir / sub).symlink_to(target, target_is_directory=True)
    return platform_settings.model_copy(update={"data_dir": run_dir, "mlflow_tracking_uri": None,
                                                "agent_error_retrain_days": retrain_days, "agent_error_shards": 1})


def _rule_alerts(settings, first: date, last: date) -> tuple[dict, pd.DataFrame]:
    """Every rule's alerts (default and grid settings) on the replay days, and the exposure (agent, day) grid."""
    from models.error_rates import build_panel
    from models.error_rates.rules import RULE_GRIDS, RULES
    from pipelines.features.store import load_daily_aggregates

    agg = load_daily_aggregates(settings.offline_store_dir, last, since=first - timedelta(days=60),
                                only=("agent_feature",))
    panel = build_panel(agg.agent_feature, first - timedelta(days=60), last)
    cols = np.arange((pd.Timestamp(first) - panel.start).days, panel.n_days)

    def frame(mask: np.ndarray) -> pd.DataFrame:
        ii, tt = np.nonzero(mask[:, cols])
        return pd.DataFrame({"agent_id": panel.agent_id[ii], "day": panel.start + pd.to_timedelta(cols[tt], unit="D")})

    out = {}
    for name, rule in RULES.items():
        for params in [{}, *RULE_GRIDS[name]]:
            out[(name, json.dumps(params))] = frame(rule(panel, **params, min_calls_7d=settings.agent_error_min_calls_7d))
    recent = np.zeros(panel.calls.shape, dtype=bool)
    active = panel.calls > 0
    for lag in range(14):
        recent[:, lag:] |= active[:, : panel.n_days - lag]
    exposure = frame(recent)
    c7 = np.stack([np.convolve(row, np.ones(7))[: panel.n_days] for row in panel.calls])
    idx = {a: i for i, a in enumerate(panel.agent_id)}
    exposure["calls_7d"] = c7[exposure["agent_id"].map(idx).to_numpy(), (exposure["day"] - panel.start).dt.days.to_numpy()]
    return out, exposure


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--days", type=int, default=120, help="nights replayed, ending 2026-11-24")
    ap.add_argument("--retrain-days", type=int, default=7)
    args = ap.parse_args()
    t_all = time.perf_counter()
    print(f"agent error-rate benchmark: {args.workspaces} workspaces, {args.days} nightly runs ending {END}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cores {os.cpu_count()}", flush=True)
    platform_settings, url = prepared_platform(args.workspaces)
    settings = _run_settings(platform_settings, args.workspaces, args.retrain_days)
    dates = [END - timedelta(days=args.days - 1 - k) for k in range(args.days)]
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    from sqlalchemy import text

    from core.db import get_engine

    engine = get_engine(url=url)
    with engine.begin() as conn:  # this benchmark's own rows only (idempotent anyway)
        conn.execute(text("delete from analytics.agent_error_alerts where as_of_date between :a and :b"),
                     {"a": dates[0], "b": dates[-1]})
    print(f"\n[1] replay: {len(dates)} nights, {dates[0]}..{dates[-1]} (retrain every {args.retrain_days} days)", flush=True)
    wall, rss, rep = timed_phase(_replay, settings, url, dates)
    nights = pd.DataFrame(rep["nights"])
    print(f"    replay wall {wall:.0f} s, peak RSS {rss:.0f} MiB; one-off store migration (new daily tables) "
          f"{rep['store_migration_s']:.0f} s for {rep['store_days_rebuilt']} days", flush=True)

    with engine.connect() as conn:
        alerts = pd.read_sql(text("select e.external_id as agent_id, a.as_of_date as day, a.status, a.alert_level,"
                                  " a.probability::float8 as probability, a.calls_last_7d"
                                  " from analytics.agent_error_alerts a"
                                  " join analytics.entities e on e.entity_type = 'agent' and e.entity_id = a.agent_id"
                                  " where a.as_of_date between :a and :b"), conn, params={"a": dates[0], "b": dates[-1]})
    alerts["day"] = pd.to_datetime(alerts["day"])
    gt = ground_truth_dir(args.workspaces)
    incidents = pd.read_parquet(gt / "incidents.parquet")
    incidents["peak"] = pd.to_datetime(incidents["peak_date"])
    rules, exposure = _rule_alerts(settings, dates[0], dates[-1])
    expo = float(len(exposure))

    print("\n[2] alerts against the ground truth (warning or above unless said)", flush=True)
    levels = {"watch+": ("watch", "warning", "critical"), "warning+": ("warning", "critical"), "critical": ("critical",)}
    model = {}
    for name, lv in levels.items():
        model[name] = score(alerts[alerts["alert_level"].isin(lv)], incidents, first, last, expo)
    r = model["warning+"]
    print(f"    incidents peaking {dates[0] + timedelta(days=LEAD_MIN)}..{dates[-1]}: {r['incidents']}; "
          f"exposure {expo / 7:.0f} agent-weeks", flush=True)
    for name, res in model.items():
        print(_line(f"model, {name}", res))
    best = {}
    for (name, params), frame in rules.items():
        res = score(frame, incidents, first, last, expo)
        if params == "{}":
            print(_line(f"{name} (default)", res))
        else:
            f1 = 2 * res["precision"] * res["recall"] / max(res["precision"] + res["recall"], 1e-9)
            if name not in best or f1 > best[name][0]:
                best[name] = (f1, params, res)
    for name, (_, params, res) in best.items():
        print(_line(f"{name} best in hindsight {params}", res))

    guard = settings.agent_error_min_calls_7d
    caught = r["caught"].reset_index()
    vol = exposure.rename(columns={"day": "vday"})
    caught = caught.assign(vday=caught["peak"] - pd.Timedelta(days=LEAD_MIN))
    caught = caught.merge(vol, on=["agent_id", "vday"], how="left").fillna({"calls_7d": 0})
    bins = pd.cut(caught["calls_7d"], [-1, guard - 1e-9, 50, 200, 1e12],
                  labels=[f"< {guard} calls/7d (guarded)", f"{guard}-50", "50-200", "> 200"])
    print("\n    model recall (warning+) by the agent's calls in the 7 days to peak - 2:")
    for b, grp in caught.groupby(bins, observed=False):
        print(f"      {str(b):<26} {_fmt(grp['early'].mean() if len(grp) else float('nan'))}  (n = {len(grp)})")
    judged = caught[caught["calls_7d"] >= guard]
    print(f"    recall on incidents with enough traffic to judge: {_fmt(judged['early'].mean())} (n = {len(judged)})")

    print("\n[3] nightly cost of the kind (predict + finalize + publish) and the agent_daily feature build", flush=True)
    for mode, grp in nights.groupby("mode"):
        print(f"    {mode:<8} nights {len(grp):3d}: kind median {grp['kind_s'].median():5.1f} s, max {grp['kind_s'].max():5.1f} s"
              f" (train median {pd.to_numeric(grp['train_s']).median() if mode == 'trained' else 0:4.1f} s);"
              f" features median {grp['features_s'].median():4.1f} s")
    retrains = [r for r in nights["retrain"] if r] if "retrain" in nights else []
    if retrains:
        print(f"    retrains (split from scoring) {len(retrains):3d}: median "
              f"{pd.Series([r['seconds'] for r in retrains]).median():5.1f} s; decisions "
              f"{pd.Series([r['decision'] for r in retrains]).value_counts().to_dict()}")
    print(f"    peak RSS of the replay process {rss:.0f} MiB; statuses: "
          f"{alerts['status'].value_counts().to_dict()}", flush=True)
    trained = nights[nights["mode"] == "trained"]
    if len(trained):
        print("    trainings: " + ", ".join(f"{row.date} v{row.version} PR-AUC {_fmt(row.metrics.get('oot_pr_auc'))}"
                                             f"{'' if (row.promotion or {}).get('promoted', True) else ' refused'}"
                                             for row in trained.itertuples()))
    last_metrics = trained.iloc[-1]["metrics"] if len(trained) else {}
    if last_metrics:
        print("    last training, out of time: " + ", ".join(f"{k} {_fmt(last_metrics.get(k))}" for k in (
            "oot_auc", "oot_pr_auc", "oot_brier", "oot_ece", "forecast_coverage_80", "forecast_coverage_95",
            "forecast_wmae", "forecast_wmae_naive_28d")))

    print("\n[4] against the goals", flush=True)
    kind_max = float(nights["kind_s"].max())
    rules_default = {name: score(f, incidents, first, last, expo) for (name, p), f in rules.items() if p == "{}"}
    def f1(x: dict) -> float:
        return 2 * x["precision"] * x["recall"] / max(x["precision"] + x["recall"], 1e-9)

    ahead = all(r["precision"] > b["precision"] and f1(r) > f1(b) for b in rules_default.values())
    for k, ok in (("precision >= 0.8", r["precision"] >= TARGETS["precision"]),
                  ("recall >= 0.7", r["recall"] >= TARGETS["recall"]),
                  ("median lead >= 3 days", r["lead_days"] >= TARGETS["lead_days"]),
                  ("ahead of every baseline rule at its default (higher precision and F1)", ahead),
                  (f"nightly cost <= 60 s (max {kind_max:.1f} s)", kind_max <= TARGETS["nightly_seconds"])):
        print(f"    {'MET ' if ok else 'MISSED'}  {k}")
    out = out_dir(f"agent_errors_{args.workspaces}")
    nights.to_json(out / "nights.json", orient="records", default_handler=str)
    print(f"\ndone in {time.perf_counter() - t_all:.0f} s; per-night records in {out / 'nights.json'}")


if __name__ == "__main__":
    main()
