"""Training split from scoring, consumption kind: retrain time, nightly scoring time, and the accuracy of scoring
with a week-old model's stored weights against a full retrain, on the same held-out days.

On the prepared platform (``bench/prepare.py``), with C = the platform's last day - 30:

1. **retrain at C - 7** (``pipelines.retrain.retrain``: holdout evaluation, backtests, weights, calibration, fits,
   MLflow, registration): the champion a weekly schedule would leave for night C;
2. **nightly scoring at C** with that champion's artifact (``score_shard`` per shard: member refits only, no
   backtest) plus the drift check (PSI of the consumption features): the nightly cost;
3. **full retrain at C** (what every night did before the split): its production forecast is the reference;
4. both forecasts of the workspace totals scored on the 30 days after C, which neither saw: median MASE, pooled
   WAPE, 95% coverage.

Targets at 1,000 workspaces: scoring well under 2 min, retrain <= 5 min; where the time goes is printed. MLflow
state goes to a tracking store of its own under ``bench/out/training_time_<n>/``.

``--compare-search`` scores night C a second time with the same artifact read as format 1 (no stored
specifications: the members search theirs, as scoring did before format 2) and prints both costs and accuracies.

    .venv/bin/python bench/training_time.py --workspaces 100
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from bench.common import out_dir  # noqa: E402
from bench.prepare import END, prepared_platform  # noqa: E402

HOLDOUT = 30
STALE_DAYS = 7


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the members' worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _levels(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily workspace totals of a published frame as ``(unique_id, ds, yhat, lo-95, hi-95)``."""
    t = frame[(frame["dimension"] == "total") & (frame["target_metric"] == "credits")]
    return t.rename(columns={"workspace_id": "unique_id", "prediction_date": "ds", "predicted_value": "yhat",
                             "confidence_lower": "lo-95", "confidence_upper": "hi-95"})[
        ["unique_id", "ds", "yhat", "lo-95", "hi-95"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=100)
    ap.add_argument("--stale-days", type=int, default=STALE_DAYS,
                    help="age of the champion that scores night C; 0: one retrain at C, whose own stored model "
                         "then scores C (scoring against training on the same data; half the cost)")
    ap.add_argument("--score-with-artifact", type=Path, default=None,
                    help="only time nightly scoring at C with this scoring artifact folder (e.g. another platform's): "
                         "workspaces it does not know take the default weights, so every member with weight is "
                         "fitted on every series (an upper bound of the scoring cost); no retrain, no accuracy")
    ap.add_argument("--compare-search", action="store_true",
                    help="also score night C with the members' specification search (the artifact read as format 1, "
                         "as before stored specifications): cost and accuracy beside the stored specifications")
    ap.add_argument("--earlier-days", type=int, default=0,
                    help="move C this many days earlier (a second run beside another one writes other folders)")
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    from pipelines.consumption.artifact import load_artifact
    from pipelines.consumption.evaluation import series_metrics, summarize
    from pipelines.consumption.kind import MODEL_NAME
    from pipelines.consumption.scoring import score_shard
    from pipelines.drift import drift_figures
    from pipelines.features.builders import daily_series
    from pipelines.features.store import load_daily_aggregates
    from pipelines.retrain import retrain

    base, url = prepared_platform(args.workspaces)
    out = out_dir(f"training_time_{args.workspaces}")
    settings = base.model_copy(update={"database_url": url, "threads": 2,
                                       "mlflow_tracking_uri": f"sqlite:///{(out / 'mlflow.db').resolve()}"})
    cutoff = END - timedelta(days=HOLDOUT + args.earlier_days)
    stale = cutoff - timedelta(days=args.stale_days)
    print(f"training time benchmark: {args.workspaces} workspaces, {settings.shards} shards, 2 shared cores; "
          f"champion trained through {stale}, scored and fully retrained at {cutoff}, both judged on "
          f"({cutoff}, {cutoff + timedelta(days=HOLDOUT)}]")

    def full_retrain() -> tuple[dict, float, pd.DataFrame]:
        """3. the full retrain at C, with where its time goes."""
        t0, c0 = time.perf_counter(), cpu_seconds()
        full = retrain("consumption", "manual", cutoff.isoformat(), settings)
        t_full, c_full = time.perf_counter() - t0, cpu_seconds() - c0
        root = settings.data_dir / "forecasts" / f"as_of={cutoff}"
        shard_refs = [pd.read_json(p, typ="series") for p in sorted(root.glob("shard=*/ref.json"))]
        shard_s = sum(float(r["seconds"]) for r in shard_refs)
        prod_s = sum(float(r["fit_seconds"]) for r in shard_refs)
        print(f"\nfull retrain at {cutoff}: {t_full:.1f} s wall, {c_full:.1f} s CPU (target <= 300 s at 1,000 "
              "workspaces) -> "
              f"v{full['model_version']} ({full['decision']})")
        print(f"  where the time goes: holdout evaluation + its backtest {shard_s - prod_s:.1f} s, production "
              f"backtests + weights + fits (totals and features) {prod_s:.1f} s, merge + MLflow + registration "
              f"{t_full - shard_s:.1f} s")
        return full, t_full, pd.read_parquet(root / "forecast.parquet")

    # 1. the champion that scores night C: a week old, or (--stale-days 0) the retrain at C itself
    if args.score_with_artifact:
        from pipelines.consumption.artifact import read_artifact

        old = {"model_version": "given"}
        print(f"scoring only, with the artifact in {args.score_with_artifact}")
    elif args.stale_days:
        t0 = time.perf_counter()
        old = retrain("consumption", "manual", stale.isoformat(), settings)
        print(f"retrain through {stale}: {time.perf_counter() - t0:.1f} s wall -> v{old['model_version']} "
              f"({old['decision']})")
    else:
        old, _, reference = full_retrain()

    # 2. nightly scoring at C with its stored model
    art = read_artifact("given", args.score_with_artifact) if args.score_with_artifact else \
        load_artifact(settings, MODEL_NAME, old["model_version"])
    # scoring alone runs a day later, so its shard folders never meet a retrain's at C
    night = cutoff + timedelta(days=1) if args.score_with_artifact else cutoff

    def nightly_scoring(artifact, label: str) -> pd.DataFrame:
        t0, c0 = time.perf_counter(), cpu_seconds()
        refs = [score_shard(settings, night, k, settings.shards, {"champion": artifact})
                for k in range(settings.shards)]
        t_fits = time.perf_counter() - t0
        drift = drift_figures(settings, artifact.trained_through, night)
        t_score, c_score = time.perf_counter() - t0, cpu_seconds() - c0
        scored = pd.concat([pd.read_parquet(Path(r["path"]) / "forecast.parquet") for r in refs], ignore_index=True)
        n_ws = sum(r["n_workspaces"] for r in refs)
        print(f"\nnightly scoring at {night}{label}: {t_score:.1f} s wall, {c_score:.1f} s CPU for {n_ws} workspaces "
              f"({sum(r['n_series'] for r in refs)} series; target well under 120 s at 1,000 workspaces)")
        per_shard = ", ".join(f"{r['seconds']:.1f} s" for r in refs)
        print(f"  per shard: {per_shard}; drift check "
              f"{t_score - t_fits:.1f} s (PSI {drift['psi']}); unknown workspaces "
              f"{sum(r['unknown_workspaces'] for r in refs)}, backtests run: 0")
        member_seconds: dict[str, float] = {}
        fixed: dict[str, int] = {}
        for r in refs:
            for k, v in r["member_seconds"].items():
                member_seconds[k] = member_seconds.get(k, 0.0) + v
            for k, v in r.get("fixed_specs", {}).items():
                fixed[k] = fixed.get(k, 0) + v
        print("  where the time goes (member fits, s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(member_seconds.items(), key=lambda kv: -kv[1])))
        print(f"  specifications: {refs[0].get('specs')}; series fitted with their stored one: {fixed}")
        if args.score_with_artifact:
            print(f"  unknown to the artifact: {sum(r['unknown_workspaces'] for r in refs)} workspaces, "
                  f"{sum(r['unknown_feature_series'] for r in refs)} feature series (default weights)")
        return scored

    scored = nightly_scoring(art, "")
    searched = None
    if args.compare_search:  # the same artifact without its stored specifications: the search, as before format 2
        searched = nightly_scoring(replace(art, config={**art.config, "format": 1}), " (searching specifications)")

    if args.score_with_artifact:
        return
    if args.stale_days:
        _, _, reference = full_retrain()

    # 4. both on the held-out days
    agg = load_daily_aggregates(settings.offline_store_dir, END, since=END - timedelta(days=settings.forecast_history_days))
    totals = daily_series(agg, END)
    actual = totals[(totals["ds"] > pd.Timestamp(cutoff)) & (totals["ds"] <= pd.Timestamp(cutoff + timedelta(days=HOLDOUT)))]
    history = totals[totals["ds"] <= pd.Timestamp(cutoff)]
    forecasts = {f"stored weights of v{old['model_version']} (trained {stale})": _levels(scored),
                 f"full retrain at {cutoff}": _levels(reference)}
    if searched is not None:
        forecasts[f"v{old['model_version']}, specifications searched"] = _levels(searched)
    summary = summarize(series_metrics(actual, forecasts, history))
    print(f"\nholdout accuracy, workspace totals, {HOLDOUT} days after {cutoff} (unseen by both):")
    print(summary[["model", "n_series", "median_mase", "pooled_wape", "median_mape", "coverage_95"]].to_string(
        index=False, float_format=lambda v: f"{v:.3f}"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process {peak:.0f} MiB")


if __name__ == "__main__":
    main()
