"""Benchmark: the churn stage on the synthetic platform, as of D = 2026-11-24, with the real pipeline code.

Measures and prints (nothing hard-coded):

1. Wall time and peak RSS of ``pipelines.churn.train_and_score(settings, engine, D)`` (all four kinds, MLflow,
   registry, scores of D) and its out-of-time metrics and champion. Target: <= 5 min.
2. All four classifier kinds fitted with calibration (``models.churn.fit_calibrated``) on the same training
   snapshots (``pipelines.churn.snapshot_dates`` / ``training_frame``), scored on the same strict out-of-time
   test snapshot: AUC, PR-AUC, Brier, ECE, top-decile lift, fit seconds. Targets: champion AUC >= 0.85,
   ECE <= 0.05, lift >= 3; AUC > 0.97 is flagged as suspicious.
3. Ground truth: the served champion's test-snapshot scores against the generator's ``churn_date`` (local
   calendar, converted to a UTC instant with the workspace's offset), and how often event labels agree.
4. Early warning: share of true churners flagged >= 14 days before their last active day, on weekly snapshots.
5. Scoring time per 10,000 users (probabilities, explanations, actions), on the D population.
6. Population, base rate, train/test rows; feature/label leakage diagnostics.
7. Coverage: the share of users active in the past year who get a score at D (goal >= 90%), beside the
   share the previous rule (active in the last 28 days) scored.
8. By state (active / lapsing / dormant): out-of-time AUC against the event label, and AUC against the
   ground truth ("gone by the window's end", goal >= 0.80) for the 30-day probability, 1 - P(alive) (the
   second score), the silence ratio and the RFM baseline, on the whole scored population, on the recently
   active (the population scored before) and among the event churners (who left vs who paused).
9. A strong hand-made baseline on the same users and snapshots: XGBoost on recency / frequency / monetary
   columns (:data:`RFM_COLUMNS`), calibrated like the champion; goal: the champion beats it by 0.02 AUC.

    .venv/bin/python bench/churn.py [--workspaces 1000] [--warm]

The platform comes from ``bench.prepare.prepared_platform`` (built once, re-used). Each run gets its own
MLflow store under ``bench/out/churn_<n>/pae`` (the offline store and staging are the platform's, linked),
so the run always registers a first version, is promoted and scores D. Unless ``--warm``, the stage's
cached ``user_behaviour`` snapshots (all but D's, which the nightly feature store writes) are deleted
first, so the stage time includes building them (a first run; in steady state earlier nights built them).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
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

D = END  # 2026-11-24
EARLY_DAYS = 14  # a flag counts as early when it comes at least this many days before the last active day
LOOKBACK_DAYS = 56  # flags looked for in the 8 weeks before the last active day
TARGETS = {"stage_seconds": 300, "auc": 0.85, "ece": 0.05, "lift": 3.0, "auc_suspicious": 0.97,
           "coverage": 0.90, "auc_gone": 0.80, "beat_baseline": 0.02}
STATES = ("active", "lapsing", "dormant")
#: The hand-made baseline: recency, frequency (active days over 28 / 90 / 365 days), monetary (credits), tenure.
RFM_COLUMNS = ["recency_days", "tenure_days", "active_days_28", "active_days_90", "active_days_365",
               "credits_28", "credits_90"]


def _stage(settings, url: str) -> dict:
    """The whole churn stage, as the nightly DAG runs it (in a forked child: wall time and peak RSS)."""
    from core.db import get_engine
    from pipelines.churn.train import train_and_score

    logging.basicConfig(level=logging.WARNING)
    return train_and_score(settings, get_engine(url=url), D)


def _run_settings(platform_settings, n: int):
    """Settings for this run: a fresh data_dir (MLflow, scores) sharing the platform's staging and offline store."""
    run_dir = out_dir(f"churn_{n}") / "pae"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for sub in ("staging", "offline_store", "rejects"):
        target = (platform_settings.data_dir / sub).resolve()
        target.mkdir(parents=True, exist_ok=True)
        (run_dir / sub).symlink_to(target, target_is_directory=True)
    return platform_settings.model_copy(update={"data_dir": run_dir, "mlflow_tracking_uri": None})


def _drop_cached_snapshots(settings, dates: list[date]) -> int:
    from pipelines.features.sets import USER_BEHAVIOUR
    from pipelines.features.store import offline_path

    n = 0
    for d in dates:
        p = offline_path(settings.offline_store_dir, USER_BEHAVIOUR, d)
        if d != D and p.exists():
            p.unlink()
            n += 1
    return n


def _served_model(settings, version: str):
    """The registered version the stage promoted, loaded through MLflow exactly as it is served."""
    from pipelines.churn.train import MODEL_NAME
    from pipelines.registry import configure

    mlflow = configure(settings)
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}").unwrap_python_model().model


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def _ground_truth(n: int) -> pd.DataFrame:
    """Users with churn / reactivation as UTC instants (local midnight of the date minus the UTC offset)."""
    gt = ground_truth_dir(n)
    users = pd.read_parquet(gt / "users.parquet", columns=["workspace_id", "user_id", "churn_date", "churn_kind",
                                                           "reactivation_date"])
    ws = pd.read_parquet(gt / "workspaces.parquet", columns=["workspace_id", "utc_offset_hours"])
    users = users.merge(ws, on="workspace_id", how="left")
    off = pd.to_timedelta(users["utc_offset_hours"], unit="h")
    users["churn_utc"] = pd.to_datetime(users["churn_date"]) - off
    users["react_utc"] = pd.to_datetime(users["reactivation_date"]) - off
    return users


def _gt_labels(keys: pd.DataFrame, gt: pd.DataFrame, as_of: date, window: int) -> pd.DataFrame:
    """Ground-truth labels for snapshot rows as of ``as_of``; the label window is UTC days (as_of, as_of + window].

    in_window: the true churn instant falls in [as_of + 1 day, as_of + window + 1 day) UTC (the brief's label).
    gone:      churned before the window ends and not reactivated before it ends (the event label's analogue:
               includes users who had already left when the snapshot was taken).
    """
    lo, hi = pd.Timestamp(as_of + timedelta(days=1)), pd.Timestamp(as_of + timedelta(days=window + 1))
    m = keys[["workspace_id", "user_id"]].merge(gt, on=["workspace_id", "user_id"], how="left")
    churn, react = m["churn_utc"], m["react_utc"]
    out = pd.DataFrame(index=keys.index)
    out["in_window"] = ((churn >= lo) & (churn < hi)).to_numpy().astype(int)
    out["before"] = (churn < lo).to_numpy() & ~(react < hi).to_numpy()
    out["gone"] = ((churn < hi) & ~(react < hi)).to_numpy().astype(int)
    out["kind"] = m["churn_kind"].to_numpy()
    return out


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--warm", action="store_true", help="keep cached user_behaviour snapshots (steady state)")
    args = ap.parse_args()
    n_ws = args.workspaces
    t_all = time.perf_counter()
    print(f"churn benchmark: {n_ws} workspaces, {args.days} days, D = {D}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}, cores {os.cpu_count()}", flush=True)

    platform_settings, url = prepared_platform(n_ws, args.days)
    settings = _run_settings(platform_settings, n_ws)
    window = settings.churn_window_days
    print(f"platform: {platform_settings.data_dir}  database: {url.rsplit('/', 1)[-1]}", flush=True)

    # ---- 1. the whole stage -----------------------------------------------------------------------------
    from pipelines.churn.train import snapshot_dates

    test_date, stage_train_dates = snapshot_dates(D, window, 8)
    dropped = 0 if args.warm else _drop_cached_snapshots(settings, [*stage_train_dates, test_date])
    print(f"\n[1] churn stage: train_and_score(settings, engine, {D}) "
          f"({'warm snapshot cache' if args.warm else f'cold: {dropped} cached snapshots removed first'}) ...",
          flush=True)
    stage_wall, stage_rss, ref = timed_phase(_stage, settings, url)
    if ref.get("status") != "success":
        raise SystemExit(f"churn stage did not succeed: {json.dumps(ref, default=str)[:2000]}")
    m = ref["metrics"]
    print(f"    status {ref['status']}, champion {ref['champion_kind']}, model v{ref['model_version']}, "
          f"wall {stage_wall:.1f} s (train+eval {ref['train_seconds']} s, scoring {ref['score_seconds']} s, "
          f"in-function total {ref['total_seconds']} s), peak RSS {stage_rss:.0f} MiB", flush=True)
    print(f"    OOT ({ref['test_date']}): AUC {_fmt(m['oot_auc'])}  PR-AUC {_fmt(m['oot_pr_auc'])}  "
          f"Brier {_fmt(m['oot_brier'], 4)}  ECE {_fmt(m['oot_ece'], 4)}  lift {_fmt(m['oot_top_decile_lift'], 2)}  "
          f"base rate {_fmt(m['oot_base_rate'])}  n {m['oot_n']}", flush=True)
    print("    CV mean AUC (selection): " + ", ".join(f"{k[7:]} {_fmt(v)}" for k, v in m.items()
                                                     if k.startswith("cv_auc_")), flush=True)

    # ---- data for the rest: same snapshots as the stage ------------------------------------------------
    from models.churn import CLASSIFIER_KINDS, TrainingSet, evaluate, fit_calibrated
    from pipelines.churn.train import snapshot_features, training_frame
    from pipelines.features.store import load_daily_aggregates

    t0 = time.perf_counter()
    agg = load_daily_aggregates(settings.offline_store_dir, D)
    train_dates = [date.fromisoformat(d) for d in ref["train_dates"]]
    test_date = date.fromisoformat(ref["test_date"])
    frame = training_frame(settings, agg, [*train_dates, test_date], D)
    is_test = (frame["as_of"] == pd.Timestamp(test_date)).to_numpy()
    train = TrainingSet.from_frame(frame[~is_test].reset_index(drop=True), days_to_inactivity="days_to_inactivity")
    test = frame[is_test].reset_index(drop=True)
    print(f"\n    training frame rebuilt in {time.perf_counter() - t0:.1f} s (cached snapshots)", flush=True)

    # ---- 2. all four kinds on the same snapshots ---------------------------------------------------------
    print("\n[2] four kinds, fit_calibrated on the same training snapshots, scored on the test snapshot", flush=True)
    rows = []
    cal_info = {}
    for kind in CLASSIFIER_KINDS:
        t0 = time.perf_counter()
        clf = fit_calibrated(kind, train, random_state=0)
        fit_s = time.perf_counter() - t0
        p = clf.predict_proba(test[list(train.X.columns)])[:, 1]
        ev = evaluate(test["churned"], p)
        rows.append({"kind": kind, **ev, "fit_seconds": fit_s})
        cal_info[kind] = clf.info["method"]
        print(f"    {kind:<14} AUC {_fmt(ev['auc'])}  PR-AUC {_fmt(ev['pr_auc'])}  Brier {_fmt(ev['brier'], 4)}  "
              f"ECE {_fmt(ev['ece'], 4)}  lift {_fmt(ev['top_decile_lift'], 2)}  fit {fit_s:.1f} s "
              f"({clf.info['method']})", flush=True)
    table = pd.DataFrame(rows).set_index("kind")

    # ---- served champion ---------------------------------------------------------------------------------
    model = _served_model(settings, ref["model_version"])
    cols = model.feature_columns
    p_test = model.predict_proba(test[cols])
    served = evaluate(test["churned"], p_test)
    same = abs(served["auc"] - m["oot_auc"]) < 1e-9
    print(f"    served champion (MLflow v{ref['model_version']}, {model.kind}) on the test snapshot: AUC "
          f"{_fmt(served['auc'])} ({'matches' if same else 'DIFFERS FROM'} the stage's reported OOT AUC)", flush=True)

    # ---- 6. sizes ----------------------------------------------------------------------------------------
    key_cols = ["workspace_id", "user_id"]
    pop = snapshot_features(settings, agg, D)
    n_train_dates = len(train_dates)
    gap = (test_date - train_dates[-1]).days

    # ---- 3. ground truth ---------------------------------------------------------------------------------
    print("\n[3] ground truth (generator churn_date, local calendar -> UTC instant via utc_offset_hours)", flush=True)
    gt = _ground_truth(n_ws)
    g = _gt_labels(test, gt, test_date, window)
    y_ev = test["churned"].to_numpy()
    gt_res = {}
    for name in ("in_window", "gone"):
        y = g[name].to_numpy()
        gt_res[name] = {
            "auc": _auc(y, p_test), "rate": float(y.mean()), "agree": float((y == y_ev).mean()),
            "ev1_gt0": int(((y_ev == 1) & (y == 0)).sum()), "ev0_gt1": int(((y_ev == 0) & (y == 1)).sum()),
            "both": int(((y_ev == 1) & (y == 1)).sum()),
            "auc_ev_label_vs_gt": _auc(y, y_ev),
        }
        r = gt_res[name]
        print(f"    GT '{name}': rate {_fmt(r['rate'])}, champion AUC vs GT {_fmt(r['auc'])}, event label agrees "
              f"{r['agree']:.1%} (event=1&GT=1 {r['both']}, event=1&GT=0 {r['ev1_gt0']}, event=0&GT=1 "
              f"{r['ev0_gt1']})", flush=True)
    already_gone = int((g["before"].to_numpy() & (y_ev == 1)).sum())
    print(f"    event churners already gone before the window opened (true churn instant <= T+1d): {already_gone} of "
          f"{int(y_ev.sum())} ({already_gone / max(1, y_ev.sum()):.1%})", flush=True)
    quiet = (y_ev == 1) & (g["gone"].to_numpy() == 0)
    print(f"    event churners who are not true churners (quiet spells: vacations/long breaks): {int(quiet.sum())} "
          f"({quiet.sum() / max(1, y_ev.sum()):.1%} of event churners)", flush=True)
    recent_test = (test["recency_days"] < settings.churn_active_within_days).to_numpy()
    rq = quiet & recent_test
    print(f"    among the recently active (last active < {settings.churn_active_within_days} d before T, the population "
          f"scored before): {int(rq.sum())} of {int((y_ev[recent_test] == 1).sum())} event churners "
          f"({rq.sum() / max(1, (y_ev[recent_test] == 1).sum()):.1%}) were only on a break; the event label itself "
          f"scores AUC {_fmt(_auc(g['gone'].to_numpy()[recent_test], y_ev[recent_test]))} against who left "
          f"(a ceiling for a perfect 30-day model there)", flush=True)

    # ---- 9. the RFM baseline on the same snapshots ---------------------------------------------------------
    print(f"\n[9] hand-made baseline: XGBoost on {', '.join(RFM_COLUMNS)}, fit_calibrated on the same training "
          "snapshots, scored on the same test snapshot", flush=True)
    t0 = time.perf_counter()
    rfm_train = TrainingSet.from_frame(frame[~is_test].reset_index(drop=True), features=RFM_COLUMNS)
    rfm = fit_calibrated("xgboost", rfm_train, random_state=0)
    p_rfm = rfm.predict_proba(test[RFM_COLUMNS])[:, 1]
    print(f"    fitted in {time.perf_counter() - t0:.1f} s ({rfm.info['method']} calibration)", flush=True)

    # ---- 8. by state: event label and ground truth -----------------------------------------------------------
    from models.churn import churn_state

    states = churn_state(test["recency_days"], test["usual_gap_days"])
    y_gone = g["gone"].to_numpy()
    segments = {"all scored": np.ones(len(test), bool), "recently active": recent_test,
                **{s: states == s for s in STATES}}
    scores_gt = {"30-day probability (champion)": p_test, "RFM baseline": p_rfm,
                 "1 - P(alive) (second score)": 1 - test["p_alive"].to_numpy(),
                 "silence ratio": test["silence_ratio"].to_numpy()}
    print("\n[8] by state (test snapshot): rows, event churn rate, GT gone rate, AUC vs the event label and vs GT gone",
          flush=True)
    by_seg = {}
    for seg, sel in segments.items():
        by_seg[seg] = {"n": int(sel.sum()), "ev_rate": float(y_ev[sel].mean()) if sel.any() else float("nan"),
                       "gt_rate": float(y_gone[sel].mean()) if sel.any() else float("nan"),
                       **{f"ev:{k}": _auc(y_ev[sel], v[sel]) for k, v in scores_gt.items()},
                       **{f"gt:{k}": _auc(y_gone[sel], v[sel]) for k, v in scores_gt.items()}}
    ev_churners = y_ev == 1
    for name, sel in (("event churners (left vs paused)", ev_churners),
                      ("recent event churners (left vs paused)", ev_churners & recent_test)):
        by_seg[name] = {"n": int(sel.sum()), "ev_rate": 1.0, "gt_rate": float(y_gone[sel].mean()),
                        **{f"gt:{k}": _auc(y_gone[sel], v[sel]) for k, v in scores_gt.items()}}
    print("| population | rows | event rate | GT gone rate | " + " | ".join(f"AUC event: {k}" for k in scores_gt)
          + " | " + " | ".join(f"AUC GT gone: {k}" for k in scores_gt) + " |")
    print("|---|---:|---:|---:|" + "---:|" * (2 * len(scores_gt)))
    for seg, r in by_seg.items():
        print(f"| {seg} | {r['n']:,} | {_fmt(r['ev_rate'])} | {_fmt(r['gt_rate'])} | "
              + " | ".join(_fmt(r.get(f"ev:{k}")) for k in scores_gt) + " | "
              + " | ".join(_fmt(r.get(f"gt:{k}")) for k in scores_gt) + " |", flush=True)
    print("    stage metrics by state (MLflow / run record): " + ", ".join(
        f"{s} AUC {_fmt(m.get(f'oot_auc_{s}'))} (n {m.get(f'oot_n_{s}', 0)})" for s in (*STATES, "recent")),
        flush=True)

    # ---- 7. coverage ---------------------------------------------------------------------------------------
    uf = agg.user_feature
    year = uf[uf["day"] > pd.Timestamp(D - timedelta(days=365))][key_cols].drop_duplicates()
    month = uf[uf["day"] > pd.Timestamp(D - timedelta(days=settings.churn_active_within_days))][key_cols]
    scored_keys = pop[key_cols].merge(year, on=key_cols)
    coverage = len(scored_keys) / max(1, len(year))
    old_coverage = len(month.drop_duplicates()) / max(1, len(year))
    print(f"\n[7] coverage at D: {len(year):,} users active in the past 365 days; {len(scored_keys):,} scored "
          f"({coverage:.1%}); the previous rule (active in the last {settings.churn_active_within_days} days) scored "
          f"{len(month.drop_duplicates()):,} ({old_coverage:.1%}); states at D: "
          + ", ".join(f"{k} {v:,}" for k, v in ref.get("states", {}).items()), flush=True)

    # ---- leakage / easiness diagnostics ------------------------------------------------------------------
    print("\n[diag] leakage and easiness checks on the test snapshot", flush=True)
    from pipelines.features.builders import DailyAggregates, build_user_features

    cut = pd.Timestamp(test_date)
    trunc = DailyAggregates(**{k: v[v["day"] <= cut] for k, v in agg.tables().items()})
    rebuilt = build_user_features(trunc, test_date)
    rebuilt = rebuilt[rebuilt["recency_days"] < settings.churn_lookback_days].reset_index(drop=True)
    key = ["workspace_id", "user_id"]
    a = test[key + cols].sort_values(key).reset_index(drop=True)
    b = rebuilt[key + cols].sort_values(key).reset_index(drop=True)
    pit_ok = len(a) == len(b) and np.allclose(a[cols].astype(float).fillna(-9e9), b[cols].astype(float).fillna(-9e9))
    print(f"    features rebuilt from events with day <= T only equal the stored snapshot: {pit_ok} "
          f"({len(a)} vs {len(b)} rows)", flush=True)
    print(f"    last training snapshot {train_dates[-1]} + {window} d label window ends "
          f"{train_dates[-1] + timedelta(days=window)} <= test date {test_date}: "
          f"{train_dates[-1] + timedelta(days=window) <= test_date}; train/test key overlap is by user, not by time",
          flush=True)
    single = {}
    for c in cols:
        x = test[c].astype(float).replace([np.inf, -np.inf], np.nan)
        x = x.fillna(x.median())
        auc = _auc(y_ev, x)
        single[c] = max(auc, 1 - auc) if math.isfinite(auc) else float("nan")
    top = sorted(single.items(), key=lambda kv: -kv[1] if math.isfinite(kv[1]) else 0)[:5]
    print("    best single-feature AUCs (|AUC - 0.5| + 0.5): " + ", ".join(f"{k} {v:.3f}" for k, v in top), flush=True)
    rec = test["recency_days"].to_numpy()
    for lo_, hi_ in ((0, 0), (0, 6), (7, 13), (14, 27)):
        sel = (rec >= lo_) & (rec <= hi_)
        print(f"    recency {lo_:>2}-{hi_:<2} d: {int(sel.sum()):>7} rows, churn rate {y_ev[sel].mean():.3f}, "
              f"champion AUC {_fmt(_auc(y_ev[sel], p_test[sel]))}", flush=True)

    # ---- 4. early warning ---------------------------------------------------------------------------------
    print("\n[4] early warning on weekly snapshots", flush=True)
    p_recent = p_test[recent_test]  # the recently active: dormant users would fill the whole top decile
    n_top = max(1, math.ceil(0.1 * len(p_recent)))
    thr = float(np.sort(p_recent)[::-1][n_top - 1])
    last_train = train_dates[-1]
    grid = [last_train + timedelta(days=7 * j) for j in range(-8, 9) if last_train + timedelta(days=7 * j) <= D]
    t0 = time.perf_counter()
    scored = []
    for t in grid:
        snap = snapshot_features(settings, agg, t)
        scored.append(snap[key].assign(as_of=pd.Timestamp(t), p=model.predict_proba(snap[cols])))
    scored = pd.concat(scored, ignore_index=True)
    scored["flag"] = scored["p"] >= thr
    ew_seconds = time.perf_counter() - t0
    print(f"    threshold = top-decile cut of the test snapshot's recently active users = {thr:.4f} (flags "
          f"{np.mean(p_test >= thr):.1%} of the test snapshot); {len(grid)} weekly snapshots {grid[0]} .. {grid[-1]} "
          f"scored in {ew_seconds:.1f} s", flush=True)

    act = agg.user_feature[key + ["day"]].drop_duplicates()
    act = act.merge(gt[key + ["churn_utc", "churn_kind"]], on=key, how="inner")
    act = act[act["churn_utc"].notna() & (act["day"] < act["churn_utc"])]
    last_active = act.groupby(key, as_index=False).agg(last_active=("day", "max"), first_active=("day", "min"))
    churners = gt[gt["churn_utc"].notna()][key + ["churn_utc", "churn_kind"]].merge(last_active, on=key, how="inner")

    def early(lo: date, hi: date) -> dict:
        """True churners with churn instant in [lo, hi) UTC: share flagged >= EARLY_DAYS before the last active day."""
        c = churners[(churners["churn_utc"] >= pd.Timestamp(lo)) & (churners["churn_utc"] < pd.Timestamp(hi))]
        s = scored.merge(c[key + ["last_active"]], on=key, how="inner")
        s = s[(s["as_of"] <= s["last_active"]) & (s["as_of"] > s["last_active"] - pd.Timedelta(days=LOOKBACK_DAYS))]
        lead = (s["last_active"] - s["as_of"]).dt.days
        flagged = s[s["flag"]].assign(lead=lead[s["flag"]])
        first = flagged.groupby(key)["lead"].max()  # the earliest flag has the longest lead
        c = c.set_index(key)
        c["lead"] = first.reindex(c.index)
        c["early"] = c["lead"] >= EARLY_DAYS
        c["seen_early"] = c.index.isin(s[lead >= EARLY_DAYS].set_index(key).index)
        by_kind = {k: (int(v["early"].sum()), len(v)) for k, v in c.groupby("churn_kind")}
        return {"n": len(c), "early": int(c["early"].sum()), "any": int(c["lead"].notna().sum()),
                "seen_early": int(c["seen_early"].sum()), "median_lead": float(c["lead"].median()),
                "by_kind": by_kind}

    windows = {
        f"test window ({test_date + timedelta(days=1)}..{D})": (test_date + timedelta(days=1), D + timedelta(days=1)),
        f"since last training snapshot ({last_train + timedelta(days=1)}..{D})": (
            last_train + timedelta(days=1), D + timedelta(days=1)),
    }
    ew = {}
    for label, (lo, hi) in windows.items():
        r = early(lo, hi)
        ew[label] = r
        kinds = ", ".join(f"{k} {e}/{t} ({e / max(1, t):.0%})" for k, (e, t) in r["by_kind"].items())
        print(f"    churners with true churn in {label}: {r['n']}; flagged >= {EARLY_DAYS} d before last activity: "
              f"{r['early']} ({r['early'] / max(1, r['n']):.1%}); flagged at all in the {LOOKBACK_DAYS} d before it: "
              f"{r['any']} ({r['any'] / max(1, r['n']):.1%}); with any snapshot >= {EARLY_DAYS} d before it: "
              f"{r['seen_early']}; median lead of first flag {_fmt(r['median_lead'], 0)} d; by kind: {kinds}",
              flush=True)
    # false-alarm baseline: users who never churn, same number of opportunities (the 6 weekly snapshots
    # that are >= 14 days before D - 0..6 days)
    base_dates = [t for t in grid if t <= D - timedelta(days=EARLY_DAYS)][-(LOOKBACK_DAYS - EARLY_DAYS) // 7:]
    never = gt[gt["churn_utc"].isna()][key]
    sb = scored[scored["as_of"].isin([pd.Timestamp(t) for t in base_dates])].merge(never, on=key, how="inner")
    any_flag = sb.groupby(key)["flag"].any()
    base_rate_flag = float(any_flag.mean()) if len(any_flag) else float("nan")
    print(f"    baseline: never-churning users flagged at least once in the {len(base_dates)} snapshots "
          f"{base_dates[0]}..{base_dates[-1]}: {base_rate_flag:.1%} of {len(any_flag)} "
          f"(per-row flag rate {sb['flag'].mean():.1%})", flush=True)
    print(f"    definition: true churner = generator churn_date (local midnight -> UTC instant) in the period; "
          f"last active day = the user's last UTC day with events before that instant; weekly snapshots every 7 d "
          f"aligned on the last training snapshot, population = users seen in the {settings.churn_lookback_days} d "
          f"to T (as the stage); "
          f"flag = served champion probability >= threshold; early = some flag at a snapshot T with "
          f"{EARLY_DAYS} <= last_active - T < {LOOKBACK_DAYS} d (any flag >= {EARLY_DAYS} d ahead, the first within "
          f"the lookback). Rows that could count as early flags have event label 0 (the user was active after T), "
          f"so the training snapshots among them do not flatter this number.", flush=True)

    from pipelines.churn.wording import with_words

    # ---- 5. scoring time ---------------------------------------------------------------------------------
    print("\n[5] scoring time on the D population (probability, TreeSHAP explanations, actions, JSON)", flush=True)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        out = with_words(model.predict(pop[cols]), pop[cols])
        for col in ("risk_factors", "recommended_actions"):
            out[col] = [json.dumps(v, sort_keys=True, default=float) for v in out[col]]
        times.append(time.perf_counter() - t0)
    score_s = min(times)
    per_10k = score_s / max(1, len(pop)) * 10_000
    print(f"    {len(pop)} users: {', '.join(f'{t:.2f}' for t in times)} s -> {per_10k:.2f} s per 10,000 users "
          f"(best of {len(times)}); stage's own scoring step incl. snapshot and Parquet: {ref['score_seconds']} s",
          flush=True)

    # ---- summary ------------------------------------------------------------------------------------------
    champ = ref["champion_kind"]
    print("\n## Churn benchmark summary")
    print(f"\nscale {n_ws} workspaces, {len(gt):,} users in ground truth; D = {D}; label window {window} d; "
          f"test snapshot {test_date}; {n_train_dates} training snapshots {train_dates[0]}..{train_dates[-1]} "
          f"(gap {gap} d); calibration slice = last training snapshot")
    print(f"population scored at D: {len(pop):,} users (seen in the {settings.churn_lookback_days} d to D); "
          f"train rows {len(train.y):,} "
          f"(base rate {float(np.mean(train.y)):.3f}), test rows {len(test):,} (base rate {float(y_ev.mean()):.3f})\n")
    print("| kind | AUC | PR-AUC | Brier | ECE | top-decile lift | fit s | calibration |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for kind, r in table.iterrows():
        star = " (champion)" if kind == champ else ""
        print(f"| {kind}{star} | {_fmt(r['auc'])} | {_fmt(r['pr_auc'])} | {_fmt(r['brier'], 4)} | {_fmt(r['ece'], 4)} "
              f"| {_fmt(r['top_decile_lift'], 2)} | {r['fit_seconds']:.1f} | {cal_info[kind]} |")
    print("\n| key figure | value | target |")
    print("|---|---:|---|")
    checks = []

    def line(name, value, target="", ok=None):
        mark = "" if ok is None else (" ok" if ok else " FAIL")
        print(f"| {name} | {value} | {target}{mark} |")
        if ok is False:
            checks.append(name)

    line("churn stage wall time (train_and_score, 4 kinds)", f"{stage_wall:.1f} s ({stage_wall / 60:.1f} min)",
         f"<= {TARGETS['stage_seconds'] // 60} min", stage_wall <= TARGETS["stage_seconds"])
    line("stage peak RSS", f"{stage_rss:.0f} MiB")
    line("champion", champ)
    line("OOT AUC (stage)", _fmt(m["oot_auc"]), f">= {TARGETS['auc']}", m["oot_auc"] >= TARGETS["auc"])
    line("OOT PR-AUC (stage)", _fmt(m["oot_pr_auc"]))
    line("OOT Brier (stage)", _fmt(m["oot_brier"], 4))
    line("OOT ECE (stage)", _fmt(m["oot_ece"], 4), f"<= {TARGETS['ece']}", m["oot_ece"] <= TARGETS["ece"])
    line("OOT top-decile lift (stage)", _fmt(m["oot_top_decile_lift"], 2), f">= {TARGETS['lift']}",
         m["oot_top_decile_lift"] >= TARGETS["lift"])
    line("AUC vs ground truth (churn in label window)", _fmt(gt_res["in_window"]["auc"]))
    line("AUC vs ground truth (gone by window end), all scored users", _fmt(gt_res["gone"]["auc"]),
         f">= {TARGETS['auc_gone']}", gt_res["gone"]["auc"] >= TARGETS["auc_gone"])
    rec = by_seg["recently active"]
    line("AUC vs GT gone, recently active only (the population scored before)",
         _fmt(rec["gt:30-day probability (champion)"]), f">= {TARGETS['auc_gone']}",
         rec["gt:30-day probability (champion)"] >= TARGETS["auc_gone"])
    line("AUC vs GT gone of 1 - P(alive): all / recently active / recent event churners (left vs paused)",
         f"{_fmt(by_seg['all scored']['gt:1 - P(alive) (second score)'])} / "
         f"{_fmt(rec['gt:1 - P(alive) (second score)'])} / "
         f"{_fmt(by_seg['recent event churners (left vs paused)']['gt:1 - P(alive) (second score)'])}")
    line("OOT AUC (event label) by state: active / lapsing / dormant",
         " / ".join(_fmt(m.get(f"oot_auc_{s}")) for s in STATES))
    line("share of users active in the past year who get a score", f"{coverage:.1%} (before: {old_coverage:.1%})",
         f">= {TARGETS['coverage']:.0%}", coverage >= TARGETS["coverage"])
    for seg in ("all scored", "recently active"):
        champ_auc, base_auc = by_seg[seg]["ev:30-day probability (champion)"], by_seg[seg]["ev:RFM baseline"]
        line(f"OOT AUC champion vs RFM baseline ({seg})", f"{_fmt(champ_auc)} vs {_fmt(base_auc)} "
             f"({champ_auc - base_auc:+.3f})", f"+{TARGETS['beat_baseline']}",
             champ_auc - base_auc >= TARGETS["beat_baseline"])
    line("event label = GT (churn in label window)", f"{gt_res['in_window']['agree']:.1%}")
    line("event label = GT (gone by window end)", f"{gt_res['gone']['agree']:.1%}")
    first_ew = next(iter(ew.values()))
    line(f"true churners (test window) flagged >= {EARLY_DAYS} d before last activity",
         f"{first_ew['early']}/{first_ew['n']} ({first_ew['early'] / max(1, first_ew['n']):.1%})")
    line("early-warning threshold (test top-decile cut)", f"{thr:.4f}")
    line("never-churners flagged in 6 weekly snapshots (false-alarm baseline)", f"{base_rate_flag:.1%}")
    line("scoring time per 10,000 users (incl. explanations, actions)", f"{per_10k:.2f} s")
    line("population at D / base rate (test)", f"{len(pop):,} / {float(y_ev.mean()):.3f}")
    line("train rows / test rows", f"{len(train.y):,} / {len(test):,}")
    line("features point-in-time (rebuilt <= T equals stored)", str(pit_ok), "True", bool(pit_ok))
    print(f"\nbenchmark wall time {time.perf_counter() - t_all:.0f} s")
    if m["oot_auc"] > TARGETS["auc_suspicious"] or table["auc"].max() > TARGETS["auc_suspicious"]:
        print(f"\n!!! WARNING: AUC > {TARGETS['auc_suspicious']} (stage {m['oot_auc']:.3f}, best kind "
              f"{table['auc'].max():.3f}). Too good to be true: leakage or a toy generator. See [diag]: "
              f"point-in-time check {pit_ok}; best single feature {top[0][0]} AUC {top[0][1]:.3f}; "
              f"{already_gone / max(1, y_ev.sum()):.0%} of event churners had already left at T. !!!")
    if checks:
        print("targets missed: " + "; ".join(checks))
    else:
        print("all targets met")


if __name__ == "__main__":
    main()
