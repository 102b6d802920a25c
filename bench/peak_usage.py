"""Benchmark: peak usage and capacity planning on the synthetic platform (default 1,000 workspaces) and on real
hourly series from PyPI packages.

Runs the real stage in a child process (hourly aggregates and the ``workspace_hourly`` features, every shard of
the ``peak_usage`` kind, finalize with MLflow and the registry, publish) and prints, on the last 7 days held
out (the workspace's complete local days in its last 168 hours, never seen by the models):
- per metric (calls, credits), for the ensemble, each member alone and the baselines run here on the same
  days: **peak-hour hit** (real peak hour within +-1 h of the predicted one), **top-3 share**, **daily-peak MAPE**,
  **capacity coverage** (real peak <= capacity, no headroom) and the **capacity ratio** (capacity / real peak:
  what the coverage costs) and the interval width relative to the peak;
- baselines: weekly seasonal naive and MSTL (seasons 24 and 168) from statsforecast, on the UTC clock with their
  own intervals; peak = argmax / max of the point forecast, capacity = the upper bound at that hour. MSTL costs
  about 0.5 s per series, so it runs on a seeded sample (``--mstl-sample``) and the ensemble is shown on the
  same sample beside it;
- time-zone inference against the generator's offsets; wall time and peak memory of the stage;
- the same table on the real hourly series of ``bench/data/real/hourly.csv.gz`` (``bench/data/real/extract.py``
  says which packages they come from), last 168 hours held out, via ``pae peaks``' code path.

    OMP_NUM_THREADS=2 .venv/bin/python bench/peak_usage.py [--workspaces 1000] [--mstl-sample 150]
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.common import timed_phase  # noqa: E402
from bench.prepare import END, ground_truth_dir, prepared_platform  # noqa: E402

D = END
COLS = ["n_days", "peak_hour_hit", "top3_share", "peak_mape", "capacity_coverage", "capacity_ratio",
        "interval_width"]
REAL = Path(__file__).resolve().parent / "data" / "real" / "hourly.csv.gz"


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def run_stage(settings) -> dict:
    """Hourly aggregates + features, the kind's shards, finalize (MLflow, registry) and publish."""
    from core.db import get_engine
    from pipelines.features.hourly import HOURLY_DAYS, build_hourly_features, load_hourly_aggregates, \
        refresh_hourly_aggregates
    from pipelines.features.sets import WORKSPACE_HOURLY
    from pipelines.features.store import write_offline
    from pipelines.kinds import get_kind
    from pipelines.publish import publish_predictions
    from pipelines.results import ShardResult

    t0 = time.perf_counter()
    store = settings.offline_store_dir
    refresh_hourly_aggregates(settings.staging_dir, store, D)
    feats = build_hourly_features(load_hourly_aggregates(store, D, D - timedelta(days=HOURLY_DAYS)), D)
    write_offline(store, WORKSPACE_HOURLY, D, feats)
    t_feat = time.perf_counter() - t0
    engine = get_engine(settings)
    kind = get_kind("peak_usage")
    shards = [kind.run_shard(settings, engine, D, s) for s in kind.shards(settings)]
    t_shards = time.perf_counter() - t0 - t_feat
    result = kind.finalize(settings, engine, D, [ShardResult.model_validate(s) for s in shards])
    rows = 0
    if result.publishable:
        with engine.begin() as conn:
            rows = publish_predictions(conn, pd.read_parquet(result.frame_path), result.prediction_type, D)["rows"]
    return {"features_s": t_feat, "shards_s": t_shards, "total_s": time.perf_counter() - t0, "rows": rows,
            "paths": [s.path for s in shards], "status": result.status, "reason": result.reason,
            "version": result.model_version}


def baseline_days(utc: pd.DataFrame, zones: dict, models: list, level: int = 95) -> pd.DataFrame:
    """statsforecast ``models`` fitted on the UTC clock without the last 168 hours; peaks on local days."""
    from statsforecast import StatsForecast

    from models.peaks.clock import to_local
    from pipelines.peak_usage.evaluation import actual_days

    end = utc.groupby("unique_id")["ds"].transform("max")
    train = utc[utc["ds"] <= end - pd.Timedelta(hours=168)]
    train = train[train["ds"] > train.groupby("unique_id")["ds"].transform("max") - pd.Timedelta(weeks=8)]
    test = utc[utc["ds"] > end - pd.Timedelta(hours=168)]
    sf = StatsForecast(models=models, freq="h", n_jobs=2)
    fc = sf.forecast(df=train, h=168, level=[level])
    fc = fc.reset_index() if "unique_id" not in fc else fc
    actual = actual_days(to_local(test, zones, ["y"]))
    out = []
    for m in models:
        name = repr(m) if not hasattr(m, "alias") else m.alias
        f = fc[["unique_id", "ds", name, f"{name}-hi-{level}"]].rename(columns={name: "yhat", f"{name}-hi-{level}": "hi"})
        loc = to_local(f, zones, ["yhat", "hi"])
        loc = loc.assign(date=loc["ds"].dt.date, hour=loc["ds"].dt.hour)
        top = loc.sort_values(["unique_id", "date", "yhat", "hour"], ascending=[True, True, False, True])
        best = top.groupby(["unique_id", "date"]).head(1)
        top3 = top.groupby(["unique_id", "date"])["hour"].apply(lambda s: list(s[:3])).rename("top_hours")
        peaks = best.merge(top3.reset_index(), on=["unique_id", "date"]).rename(columns={"hour": "peak_hour"})
        peaks = peaks.assign(peak_value=peaks["yhat"], capacity=np.maximum(peaks["hi"], peaks["yhat"]),
                             peak_lower=peaks["yhat"], peak_upper=np.maximum(peaks["hi"], peaks["yhat"]),
                             hourly_upper_at_peak=np.maximum(peaks["hi"], peaks["yhat"]))
        from pipelines.peak_usage.evaluation import day_metrics

        out.append(day_metrics(peaks, actual, f"{name} (statsforecast, UTC)"))
    return pd.concat(out, ignore_index=True)


def real_series(level: int = 95) -> pd.DataFrame:
    """The real hourly series: ensemble (with MSTL as a member), its members, and the two baselines."""
    from statsforecast.models import MSTL, SeasonalNaive

    from models.peaks import PeakForecaster
    from pipelines.peak_usage.evaluation import actual_days, day_metrics
    from pipelines.peak_usage.forecast import forecast_peaks

    df = pd.read_csv(REAL, parse_dates=["ds"])
    end = df.groupby("unique_id")["ds"].transform("max")
    train, test = df[df["ds"] <= end - pd.Timedelta(hours=168)], df[df["ds"] > end - pd.Timedelta(hours=168)]
    actual = actual_days(test)
    members = (*PeakForecaster.members, "MSTL")
    cache: dict = {}
    parts = []
    for name, ms in {"Ensemble (+MSTL member)": members, "Ensemble (default members)": PeakForecaster.members,
                     **{m: (m,) for m in members}}.items():
        model = PeakForecaster(members=ms, n_jobs=2, cache=cache).fit(train)
        first = [(pd.Timestamp(e) + pd.Timedelta(hours=1)).date() for e in model.ends_]
        peaks, _, _ = forecast_peaks(model, 168, first, 7, level)
        parts.append(day_metrics(peaks, actual, name))
    parts.append(baseline_days(df, {}, [SeasonalNaive(season_length=168, alias="SeasonalNaive168"),
                                        MSTL(season_length=[24, 168], alias="MSTL")], level))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--mstl-sample", type=int, default=150)
    args = ap.parse_args()
    from statsforecast.models import MSTL, SeasonalNaive

    from pipelines.features.hourly import hourly_series, load_hourly_aggregates
    from pipelines.features.sets import WORKSPACE_HOURLY
    from pipelines.features.store import read_offline
    from pipelines.peak_usage.evaluation import summarize_days

    settings, _ = prepared_platform(args.workspaces)
    wall, rss, stage = timed_phase(run_stage, settings)
    print(f"# Peak usage on {args.workspaces} workspaces, as of {D}")
    print(f"stage wall time {wall:.1f} s (hourly aggregates + features {stage['features_s']:.1f} s, shards "
          f"{stage['shards_s']:.1f} s, finalize + publish {stage['total_s'] - stage['features_s'] - stage['shards_s']:.1f} s),"
          f" peak RSS {rss:.0f} MiB; {stage['rows']} rows published; model v{stage['version']} ({stage['status']}"
          f"{': ' + stage['reason'] if stage['reason'] else ''})")
    days = pd.concat([pd.read_parquet(Path(p) / "holdout_days.parquet") for p in stage["paths"]
                      if (Path(p) / "holdout_days.parquet").exists()], ignore_index=True)
    feats = read_offline(settings.offline_store_dir, WORKSPACE_HOURLY, D)
    zones = dict(zip(feats["workspace_id"], feats["time_zone"]))
    truth = pd.read_parquet(ground_truth_dir(args.workspaces) / "workspaces.parquet").set_index("workspace_id")
    off = truth["utc_offset_hours"].reindex(feats["workspace_id"]).to_numpy()
    err = np.abs(feats["utc_offset_hours"].to_numpy() - off)
    inferred = feats["time_zone_source"].eq("inferred").to_numpy()
    print(f"\ntime zones: {inferred.mean():.3f} inferred (others UTC: {feats['time_zone_source'][~inferred].value_counts().to_dict()});"
          f" offset error <= 0.5 h on {np.mean(err[inferred] <= 0.5):.3f} of inferred, <= 1 h on {np.mean(err[inferred] <= 1):.3f}")

    t0 = time.perf_counter()
    table = load_hourly_aggregates(settings.offline_store_dir, D, D - timedelta(days=7 * 12 + 2))
    utc = hourly_series(table, D, ("calls", "credits"), since=pd.Timestamp(D - timedelta(days=7 * 12 + 2)))
    base = []
    for metric in ("calls", "credits"):
        s = utc[["unique_id", "ds", metric]].rename(columns={metric: "y"})
        base.append(baseline_days(s, zones, [SeasonalNaive(season_length=168, alias="SeasonalNaive168")]).assign(metric=metric))
        ids = sorted(s["unique_id"].unique())
        sample = set(np.random.default_rng(0).choice(ids, size=min(args.mstl_sample, len(ids)), replace=False))
        ms = baseline_days(s[s["unique_id"].isin(sample)], zones, [MSTL(season_length=[24, 168], alias="MSTL")])
        base.append(ms.assign(metric=metric, model=f"MSTL (statsforecast, UTC) [sample of {len(sample)}]"))
        ens = days[(days["metric"] == metric) & (days["model"] == "Ensemble") & days["unique_id"].isin(sample)]
        base.append(ens.assign(model=f"Ensemble [same sample of {len(sample)}]"))
    t_base = time.perf_counter() - t0
    summary = summarize_days(pd.concat([days, *base], ignore_index=True))
    for metric in ("calls", "credits"):
        print(f"\n## {metric}: last 7 days held out (complete local days)")
        print(_table(summary[summary["metric"] == metric], ["model", *COLS]))
    print(f"\nbaselines took {t_base:.1f} s (not in the stage's wall time)")
    with_weights = pd.concat([pd.read_parquet(Path(p) / "weights.parquet") for p in stage["paths"]], ignore_index=True)
    print("\nchoice per group (production fit):")
    print(with_weights.groupby(["metric", "group", "choice"]).size().rename("series").reset_index().to_string(index=False))
    hourly = [pd.read_json(Path(p) / "ref.json", typ="series")["holdout_hourly"] for p in stage["paths"]]
    cov = pd.DataFrame(hourly)
    print("\nhourly interval coverage on the holdout (pooled over shards, weighted by hours):")
    for metric in ("calls", "credits"):
        w = cov[f"{metric}_hours"]
        print(f"  {metric}: 80% -> {np.average(cov[f'{metric}_coverage_80'], weights=w):.3f}, "
              f"95% -> {np.average(cov[f'{metric}_coverage_95'], weights=w):.3f}, "
              f"hourly WAPE {np.average(cov[f'{metric}_wape'], weights=w):.3f}")

    if REAL.exists():
        t0 = time.perf_counter()
        real = summarize_days(real_series())
        print(f"\n## Real hourly series ({REAL.relative_to(REAL.parents[3])}: bank calls, DC bike share, NYC flights, "
              "Victoria and England electricity, SF temperature; last 168 hours held out)")
        print(_table(real, ["model", *COLS]))
        print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
