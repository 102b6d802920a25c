"""Benchmark: credit consumption forecasting on the synthetic platform (default 1,000 workspaces × 730 days).

Runs the real pipeline (every shard, finalize with MLflow and the registry, publish), then prints:
- wall time of training + backtest + publish, beside a per-series Prophet loop timed on a sample and
  scaled to the same number of series;
- the holdout table (the last 30 days, never seen by any model): median MASE, MAPE, sMAPE, WAPE,
  pooled WAPE and 80/95% coverage for seasonal naive, each member and the ensemble, and Prophet on the
  sample beside the ensemble on the same sample;
- the ensemble's rolling-origin backtest table (4 origins; its weights were chosen on these windows);
- realism statistics of the workspace series;
- p50/p95/p99 latency of ``PredictiveAnalytics.predict_credit_consumption`` from the stored predictions.

    .venv/bin/python bench/consumption.py [--workspaces 1000] [--prophet-sample 40]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.prepare import prepared_platform  # noqa: E402

D = date(2026, 11, 24)


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def breakdown_holdout(settings, refs: list[dict], agg) -> pd.DataFrame:
    """Holdout accuracy of the workspace × feature forecasts before and after reconciliation."""
    from models.forecasting import Ensemble
    from pipelines.consumption.evaluation import series_metrics, summarize
    from pipelines.consumption.forecast import ensemble_params, reconcile
    from pipelines.features.builders import daily_series

    level = settings.forecast_level
    bottom_all = daily_series(agg, D, by_feature=True)
    cutoff = pd.Timestamp(D) - pd.Timedelta(days=settings.forecast_holdout_days)
    parts = []
    for ref in refs:
        path = Path(ref["path"]) / "holdout_total_forecast.parquet"
        if not path.exists():
            continue
        total_fc = pd.read_parquet(path)
        bottom = bottom_all[bottom_all["unique_id"].str.split("|", n=1).str[0].isin(set(total_fc["workspace_id"]))]
        train, actual = bottom[bottom["ds"] <= cutoff], bottom[bottom["ds"] > cutoff]
        train = train[train["unique_id"].isin(train.groupby("unique_id").size().loc[lambda n: n >= settings.forecast_min_history_days].index)]
        base = Ensemble(**ensemble_params(settings, "feature")).fit(train, freq="D").predict(h=settings.forecast_holdout_days, level=level)
        base[["workspace_id", "feature"]] = base["unique_id"].str.split("|", n=1, expand=True)
        rec = reconcile(total_fc, base.drop(columns="unique_id"))
        rec["unique_id"] = rec["workspace_id"] + "|" + rec["feature"]
        names = {"yhat_lower": f"lo-{level}", "yhat_upper": f"hi-{level}"}
        forecasts = {"Feature ensemble (base)": base.rename(columns=names),
                     "Feature ensemble, reconciled": rec.rename(columns=names)}
        parts.append(series_metrics(actual, forecasts, train))
    return summarize(pd.concat(parts, ignore_index=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--prophet-sample", type=int, default=40)
    ap.add_argument("--latency-calls", type=int, default=500)
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    from core.db import get_engine
    from pipelines.consumption.evaluation import series_metrics, summarize
    from pipelines.consumption.kind import KIND as consumption
    from pipelines.features.builders import daily_series
    from pipelines.features.store import load_daily_aggregates
    from pipelines.publish import publish_predictions
    from pipelines.simulator.realism import series_realism_stats

    settings, url = prepared_platform(args.workspaces)
    engine = get_engine(url=url)
    print(f"consumption benchmark: {args.workspaces} workspaces, as of {D}, h={settings.forecast_horizon_days}, "
          f"{settings.shards} shards, 2 cores (shared with the database)")

    t0 = time.perf_counter()
    refs, shard_results = [], []
    for k in consumption.shards(settings):
        ts = time.perf_counter()
        shard_results.append(consumption.run_shard(settings, engine, D, k))
        refs.append(shard_results[-1].details)
        print(f"  shard {k}: {refs[-1]['n_series']} series in {time.perf_counter() - ts:.1f} s "
              f"({refs[-1].get('n_fallbacks', 0)} fallbacks)", flush=True)
    t_shards = time.perf_counter() - t0
    final = consumption.finalize(settings, engine, D, shard_results)
    frame_path = Path(settings.data_dir / "forecasts" / f"as_of={D.isoformat()}" / "forecast.parquet")
    frame = pd.read_parquet(frame_path)
    with engine.begin() as conn:
        published = publish_predictions(conn, frame, final.prediction_type, D)
    t_total = time.perf_counter() - t0
    n_series = sum(r["n_series"] for r in refs)
    print(f"\ntraining + backtest + publish: {t_total:.1f} s for {n_series} series "
          f"(shards {t_shards:.1f} s, finalize+publish {t_total - t_shards:.1f} s); {published['rows']:,} rows published")

    # Prophet per series on a sample of workspace totals: time and holdout accuracy
    from models.forecasting import Prophet

    agg = load_daily_aggregates(settings.offline_store_dir, D, since=D - timedelta(days=settings.forecast_history_days - 1))
    totals = daily_series(agg, D)
    rng = np.random.default_rng(0)
    ids = sorted(totals["unique_id"].unique())
    sample = list(rng.choice(ids, size=min(args.prophet_sample, len(ids)), replace=False))
    cutoff = pd.Timestamp(D) - pd.Timedelta(days=settings.forecast_holdout_days)
    sub = totals[totals["unique_id"].isin(sample)]
    train, actual = sub[sub["ds"] <= cutoff], sub[sub["ds"] > cutoff]
    train = train[train["unique_id"].isin(train.groupby("unique_id").size().loc[lambda s: s >= settings.forecast_min_history_days].index)]
    tp = time.perf_counter()
    prophet = Prophet(n_jobs=1).fit(train, freq="D")
    fc = {"Prophet": prophet.predict(h=settings.forecast_holdout_days, level=80).rename(columns={"yhat_lower": "lo-80", "yhat_upper": "hi-80"})
          .merge(prophet.predict(h=settings.forecast_holdout_days, level=95).drop(columns="yhat")
                 .rename(columns={"yhat_lower": "lo-95", "yhat_upper": "hi-95"}), on=["unique_id", "ds"])}
    per_prophet = time.perf_counter() - tp
    n_fit = train["unique_id"].nunique()
    per_series_s = per_prophet / max(n_fit, 1)
    n_fits = n_series + sum(r["n_workspaces"] for r in refs)  # production passes + the holdout pass on totals
    print(f"per-series Prophet: {per_series_s:.3f} s/series (fit + 2 predicts, {n_fit} sampled series); scaled to "
          f"the pipeline's {n_fits} series fits: {per_series_s * n_fits:.0f} s, vs {t_total:.0f} s for the whole "
          f"ensemble pipeline")

    root = frame_path.parent
    per_series = pd.read_csv(root / "holdout_per_series.csv")
    summary = summarize(per_series)
    cols = ["model", "n_series", "median_mase", "median_mape", "median_smape", "median_wape", "pooled_wape",
            "pooled_period_err", "coverage_80", "coverage_95"]
    print("\nHoldout (last 30 days, unseen), workspace totals; pooled_period_err is the error of each "
          "workspace's 30-day credit total (sum of |forecast total - actual total| / sum of actual totals); "
          "ETS-uncleaned is ETS without the Robust wrapper:")
    print(_table(summary.sort_values("median_mase"), cols))
    prophet_metrics = series_metrics(actual, fc, train)
    same = per_series[per_series["unique_id"].isin(prophet_metrics["unique_id"])]
    print(f"\nProphet vs the pipeline's models on the same {prophet_metrics['unique_id'].nunique()} sampled workspaces:")
    print(_table(summarize(pd.concat([same, prophet_metrics])).sort_values("median_mase"), cols))
    bt = root / "backtest_summary.csv"
    if bt.exists():
        print("\nRolling-origin backtest (4 origins × 30 days; the ensemble's weights were chosen on these windows):")
        print(pd.read_csv(bt).to_string(index=False))
    bt = root / "backtest_summary_features.csv"
    if bt.exists():
        print("\nWorkspace × feature/service series, rolling-origin backtest of the production feature ensemble "
              "(4 origins × 30 days, members fitted at the first origin and conditioned after it; ensemble "
              "weights chosen on these windows; before reconciliation):")
        print(pd.read_csv(bt).to_string(index=False))

    ens = summary.set_index("model").loc["Ensemble"]
    print(f"\nworkspace-total holdout: pooled WAPE {ens['pooled_wape']:.3f} (target ≤ 0.10; for the data's own "
          f"floor see bench/noise_floor.py), 30-day-total error {ens['pooled_period_err']:.3f}, median WAPE "
          f"{ens['median_wape']:.3f}, median MAPE {ens['median_mape']:.3f} (seed: MAPE < 0.10), "
          f"coverage 80% {ens['coverage_80']:.3f} (target 0.77-0.83), 95% {ens['coverage_95']:.3f} (target 0.92-0.97)")
    from pipelines.consumption.evaluation import summarize_cumulative

    per_total = pd.read_csv(root / "holdout_cumulative_per_series.csv")
    per_total["volume"] = pd.qcut(per_total["actual_total"].rank(method="first"), 4,
                                  labels=["Q1 smallest", "Q2", "Q3", "Q4 largest"])
    print("\nHoldout 30-day credit total per workspace: the cumulative forecast's interval (conformal on backtest "
          "totals, per ensemble group) vs the sum of the daily bounds; coverage and median width / forecast:")
    rows = []
    for volume, part in [("all", per_total)] + list(per_total.groupby("volume", observed=True)):
        cum = summarize_cumulative(part)
        rows.append({"volume": volume, "n_series": len(part),
                     **{f"{short}_{m}_{lv}": cum[f"{name}_total_{m}_{lv}"]
                        for name, short in (("cumulative", "cum"), ("summed_daily", "summed"))
                        for m in ("coverage", "width") for lv in (80, 95)}})
    print(_table(pd.DataFrame(rows), list(rows[0])))
    e = per_series[per_series["model"] == "Ensemble"].copy()
    e["volume"] = pd.qcut(e["actual_sum"].rank(method="first"), 4, labels=["Q1 smallest", "Q2", "Q3", "Q4 largest"])
    g = e.groupby("volume", observed=True)
    by_size = pd.DataFrame({"n_series": g.size(), "pooled_wape": g["abs_err_sum"].sum() / g["actual_sum"].sum(),
                            "median_mape": g["mape"].median(), "median_mase": g["mase"].median(),
                            "coverage_95": g["hits_95"].sum() / g["n_95"].sum()}).reset_index()
    print("\nEnsemble holdout by workspace volume quartile:")
    print(_table(by_size, list(by_size.columns)))
    beats = {m: ens["median_mase"] < summary.set_index("model").loc[m, "median_mase"]
             for m in ("SeasonalNaive", "ETS") if m in set(summary["model"])}
    print(f"ensemble median MASE {ens['median_mase']:.3f} beats: {beats}")

    print("\nBreakdown holdout (bench only, not timed above): feature ensembles fitted on the same 30-day-earlier "
          "history per shard, reconciled with the holdout total forecasts, scored on the last 30 days:")
    tb = time.perf_counter()
    print(_table(breakdown_holdout(settings, refs, agg), ["model", "n_series", "median_mase", "median_wape",
                                                          "pooled_wape", f"coverage_{settings.forecast_level}"]))
    print(f"({time.perf_counter() - tb:.0f} s)")

    stats = series_realism_stats(totals)
    print("\nRealism of the workspace series (min / median / max):")
    for c in ("cv", "seasonal_strength", "trend_strength", "acf7", "zero_share"):
        s = stats[c].dropna()
        print(f"  {c:<18} {s.min():7.2f} {s.median():7.2f} {s.max():7.2f}")

    from services.predictive_analytics import PredictiveAnalytics

    service = PredictiveAnalytics(engine)
    ws_ids = [i for i in ids]
    lat = []

    async def run() -> None:
        for i in range(args.latency_calls):
            t = time.perf_counter()
            await service.predict_credit_consumption(ws_ids[i % len(ws_ids)], days_ahead=30)
            lat.append((time.perf_counter() - t) * 1000)

    asyncio.run(run())
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(f"\npredict_credit_consumption from stored predictions: {len(lat)} calls, p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms (target ≤ 50), p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
