"""Benchmark: growth projections (DAU/WAU/MAU scenarios) on the synthetic platform (default 1,000 workspaces).

Runs the real growth kind (every shard: eligibility, the 90-day holdout projection and the production one;
finalize with MLflow and the registry; publish) in a child process, then prints:
- wall time and peak memory of train + backtest + publish (target <= 3 minutes at 1,000 workspaces);
- on the holdout of the last 90 days, which no model saw: median MASE at 30 and 90 days for DAU, WAU and MAU
  of ``likely`` (the P50 of the paths, what is published), of the ensemble mean and of its members, beside
  seasonal naive and ETS fitted here on the same series and Prophet on a sample of them (with the ensemble on
  the same sample);
- coverage of the 80% and 95% intervals (targets 75-85% and 92-97%) and how often the realised value is
  above each scenario;
- milestone calibration: of the round-number milestones crossed in the holdout, the share whose crossing
  date fell inside the projected P10-P90 dates (target about 80%);
- the rolling-origin backtest of each member beside the ensemble;
- latency of ``PredictiveAnalytics.predict_growth_metrics`` from the stored rows.

    .venv/bin/python bench/growth.py [--workspaces 1000] [--prophet-sample 60]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from bench.common import timed_phase
from bench.prepare import prepared_platform

D = date(2026, 11, 24)
NAIVE, ETS_BASE = "bench-SeasonalNaive", "bench-ETS"  # fitted here on the raw series, apart from the ensemble's members


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def _features(settings, url: str) -> dict:
    """The workspace_growth feature set as of D (the prepared platform predates it) and the realised counts."""
    from core.db import get_engine
    from pipelines.features.builders import build_growth_features
    from pipelines.features.sets import WORKSPACE_GROWTH
    from pipelines.features.store import (
        load_daily_aggregates,
        replace_growth_metrics,
        write_offline,
    )

    agg = load_daily_aggregates(settings.offline_store_dir, D)
    growth = build_growth_features(agg, D, settings.growth_mau_window_days)
    write_offline(settings.offline_store_dir, WORKSPACE_GROWTH, D, growth)
    days = sorted({d.date() for d in growth["day"]})
    with get_engine(url=url).begin() as conn:
        n = replace_growth_metrics(conn, growth, days, D)
    return {"rows": len(growth), "workspaces": int(growth["workspace_id"].nunique()), "db_rows": n}


def _pipeline(settings, url: str) -> dict:
    """Every shard, finalize, publish: what the nightly run does for growth."""
    import resource

    import pandas as pd

    from core.db import get_engine
    from pipelines.growth.kind import KIND
    from pipelines.publish import publish_predictions

    def cpu() -> float:
        return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for f in ("ru_utime", "ru_stime"))

    engine = get_engine(url=url)
    t0, c0 = time.perf_counter(), cpu()
    results = []
    for k in KIND.shards(settings):
        ts = time.perf_counter()
        results.append(KIND.run_shard(settings, engine, D, k))
        d = results[-1].details
        print(f"  shard {k}: {d['n_eligible']} of {d['n_workspaces']} workspaces projected, "
              f"{d.get('holdout_workspaces', 0)} in the holdout, {time.perf_counter() - ts:.1f} s", flush=True)
    t_shards = time.perf_counter() - t0
    final = KIND.finalize(settings, engine, D, results)
    published = {"rows": 0}
    if final.publishable:
        with engine.begin() as conn:
            published = publish_predictions(conn, pd.read_parquet(final.frame_path), final.prediction_type, D)
    return {"shards_s": t_shards, "total_s": time.perf_counter() - t0, "cpu_s": cpu() - c0, "status": final.status,
            "reason": final.reason, "rows": published["rows"], "version": final.model_version,
            "eligible": sum(r.details["n_eligible"] for r in results),
            "workspaces": sum(r.details["n_workspaces"] for r in results)}


def _baselines(settings, growth: pd.DataFrame, workspaces: list[str], cutoff: date, sample: list[str]) -> pd.DataFrame:
    """Seasonal naive and ETS on every holdout series, Prophet on the sample's: per-series MASE at 30/90 days."""
    from models.forecasting import ETS, Prophet, SeasonalNaive
    from pipelines.growth.evaluation import long_actuals, mase_scales, series_metrics
    from pipelines.growth.project import long_series

    H = settings.growth_holdout_days
    actual = long_actuals(growth, workspaces, cutoff, D)
    scale = mase_scales(growth, workspaces, cutoff)
    out, timings = [], {}
    for model, ws in ((SeasonalNaive(alias=NAIVE), workspaces), (ETS(n_jobs=2, alias=ETS_BASE), workspaces),
                      (Prophet(n_jobs=2), sample)):
        t = time.perf_counter()
        train = long_series(growth, ws, cutoff, settings.forecast_history_days)
        fc = model.fit(train, freq="D").predict(h=H, level=80)
        fc[["workspace_id", "target_metric"]] = fc["unique_id"].str.split("|", n=1, expand=True)
        fc = fc.rename(columns={"ds": "prediction_date"})
        out.append(series_metrics(actual, {model.name: fc}, scale, cutoff))
        timings[model.name] = (time.perf_counter() - t, len(ws) * 3)
    for name, (s, n) in timings.items():
        print(f"  {name}: {n} series in {s:.1f} s ({s / max(n, 1):.3f} s/series)")
    return pd.concat(out, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--prophet-sample", type=int, default=60, help="workspaces (x3 series) Prophet is fitted on")
    ap.add_argument("--latency-calls", type=int, default=300)
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    from core.db import get_engine
    from pipelines.features.sets import WORKSPACE_GROWTH
    from pipelines.features.store import read_offline
    from pipelines.growth.evaluation import LIKELY, summarize
    from pipelines.growth.project import eligibility

    settings, url = prepared_platform(args.workspaces)
    print(f"growth benchmark: {args.workspaces} workspaces, as of {D}, horizon {settings.growth_horizon_days} days, "
          f"holdout {settings.growth_holdout_days} days, {settings.growth_paths} paths per workspace, "
          f"{settings.shards} shards, MAU window {settings.growth_mau_window_days} days, 2 cores (shared)")
    wall, rss, feats = timed_phase(_features, settings, url)
    print(f"growth features (exact DAU/WAU/MAU per workspace and day, offline store + DB): {wall:.1f} s, "
          f"peak {rss:.0f} MiB, {feats}")
    wall, rss, res = timed_phase(_pipeline, settings, url)
    print(f"\ntrain + backtest + publish: {res['total_s']:.1f} s (shards {res['shards_s']:.1f} s, finalize + publish "
          f"{res['total_s'] - res['shards_s']:.1f} s; target <= 180 s), CPU {res['cpu_s']:.0f} s (user + system, "
          f"this process and its workers; {os.getloadavg()[0]:.1f} load average at the end on 2 cores), "
          f"peak memory {rss:.0f} MiB; "
          f"{res['eligible']} of {res['workspaces']} workspaces projected (the others: insufficient_data), "
          f"{res['rows']:,} rows published, model v{res['version']} ({res['status']}{', ' + res['reason'] if res['reason'] else ''})")

    root = settings.data_dir / "growth" / f"as_of={D.isoformat()}"
    per_series = pd.read_csv(root / "holdout_per_series.csv")
    growth = read_offline(settings.offline_store_dir, WORKSPACE_GROWTH, D)
    cutoff = D - timedelta(days=settings.growth_holdout_days)
    hold = eligibility(growth, cutoff, settings)
    workspaces = sorted(hold.loc[hold["status"] == "success", "workspace_id"])
    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(workspaces, size=min(args.prophet_sample, len(workspaces)), replace=False))
    print(f"\nbaselines on the same {len(workspaces)} holdout workspaces (x3 series), fitted up to {cutoff}:")
    base = _baselines(settings, growth, workspaces, cutoff, sample)
    allm = pd.concat([per_series, base[base["model"] != "Prophet"]], ignore_index=True)
    summary = summarize(allm)
    cols = ["model", "target_metric", "n_series", "median_mase_30", "median_mase_90"]
    print(f"\nHoldout MASE (last {settings.growth_holdout_days} days, unseen; scale: in-sample seasonal-naive MAE; "
          f"{LIKELY} = P50 of the paths, what is published; Ensemble-mean = the point forecast the paths are drawn "
          f"around; a member is scored on the series where it carries weight, so its n_series can be smaller):")
    for metric in ("dau", "wau", "mau", "all"):
        print(f"\n{metric}:")
        print(_table(summary[summary["target_metric"] == metric].sort_values("median_mase_30"), cols))
    same = pd.concat([per_series[per_series["workspace_id"].isin(sample)], base[base["workspace_id"].isin(sample)]])
    ps = summarize(same)
    print(f"\nProphet vs the others on the same {len(sample)} sampled workspaces ({len(sample) * 3} series):")
    print(_table(ps[ps["target_metric"] == "all"].sort_values("median_mase_30"), cols))
    for metric in ("dau", "wau", "mau"):
        print(_table(ps[(ps["target_metric"] == metric) & ps["model"].isin([LIKELY, "Prophet", NAIVE])]
                     .sort_values("median_mase_30"), cols))

    cov = pd.read_csv(root / "holdout_coverage.csv")
    print("\nInterval coverage of likely on the holdout days (targets: 80% -> 0.75-0.85, 95% -> 0.92-0.97), and the "
          "share of days at or above each scenario (calibrated: worst 0.9, likely 0.5, best 0.1):")
    print(_table(cov, ["target_metric", "n_days", "coverage_80", "coverage_95", "above_worst", "above_likely",
                       "above_best"]))
    ms = pd.read_csv(root / "holdout_milestones.csv")
    crossed = ms[ms["crossed"]]
    inside = crossed["inside_p10_p90"].astype(bool).mean() if len(crossed) else float("nan")
    brier = ((ms["probability"] - ms["crossed"].astype(float)) ** 2).mean()
    base_rate = ms["crossed"].mean()
    print(f"\nMilestones (next two round numbers above each metric at the cutoff): {len(ms)} milestones, "
          f"{len(crossed)} crossed in the holdout; crossing date inside P10-P90: {inside:.3f} (target ~0.80); "
          f"P(reach within 90 days): Brier {brier:.3f} (constant base rate {base_rate:.2f}: "
          f"{((base_rate - ms['crossed'].astype(float)) ** 2).mean():.3f})")
    by_metric = crossed.groupby("target_metric")["inside_p10_p90"].agg(lambda s: s.astype(bool).mean())
    print("  inside P10-P90 by metric: " + ", ".join(f"{k} {v:.3f} ({(crossed['target_metric'] == k).sum()})"
                                                      for k, v in by_metric.items()))
    bt = root / "backtest_summary.csv"
    if bt.exists():
        print(f"\nRolling-origin backtest of the production ensemble ({settings.growth_backtest_windows} origins "
              f"{settings.growth_backtest_step_days} days apart x 90 days; weights chosen on these windows, so the "
              "Ensemble row is in-sample):")
        print(pd.read_csv(bt).to_string(index=False))

    likely = summary[(summary["model"] == LIKELY)].set_index("target_metric")
    verdict = []
    for other, table in ((NAIVE, summary), ("Prophet", ps)):
        o = table[table["model"] == other].set_index("target_metric")
        e = table[table["model"] == LIKELY].set_index("target_metric")
        for H in (30, 90):
            verdict.append(f"{other} @{H}d: {e.at['all', f'median_mase_{H}']:.3f} vs {o.at['all', f'median_mase_{H}']:.3f} "
                           f"({'beats' if e.at['all', f'median_mase_{H}'] < o.at['all', f'median_mase_{H}'] else 'does NOT beat'})")
    print("\nGoal (median MASE of likely over DAU, WAU and MAU below seasonal naive and Prophet at both horizons):\n  "
          + "\n  ".join(verdict))
    print("  likely median MASE by metric @30/@90: " + ", ".join(
        f"{m} {likely.at[m, 'median_mase_30']:.3f}/{likely.at[m, 'median_mase_90']:.3f}" for m in ("dau", "wau", "mau")))

    from services.predictive_analytics import PredictiveAnalytics

    engine = get_engine(url=url)
    service = PredictiveAnalytics(engine)
    projected = sorted(pd.read_parquet(root / "projection.parquet")["workspace_id"].unique())
    lat = []

    async def run() -> None:
        for i in range(args.latency_calls):
            t = time.perf_counter()
            await service.predict_growth_metrics(projected[i % len(projected)], ("dau", "wau", "mau")[i % 3], 90)
            lat.append((time.perf_counter() - t) * 1000)

    asyncio.run(run())
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(f"\npredict_growth_metrics from stored rows: {len(lat)} calls, p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
