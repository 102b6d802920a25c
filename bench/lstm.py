"""Benchmark: the global LSTM member of the consumption ensemble (issue 16) on the synthetic platform.

Same data and holdout as ``bench/consumption.py``: workspace totals of the prepared platform, per
workspace shard (``PAE_SHARDS``, as the pipeline fits them), trained on everything but the last
``forecast_holdout_days`` days and scored on them (series with fewer than ``forecast_min_history_days``
days of training history are left out, as in the pipeline). Prints:

- the LSTM alone (the member as the ensemble uses it: ``Robust(GlobalLSTM)`` with the pipeline's caps):
  training time per fit, windows and epochs, and the process's peak RSS;
- holdout median MASE (and pooled WAPE, 80/95% coverage) of the LSTM alone, seasonal naive, ETS, and the
  pipeline's ensemble without and with the LSTM (``ensemble_params(settings)`` with
  ``include_lstm`` False / True);
- the members' rolling-origin backtest MASE inside the ensemble with the LSTM (where weights are chosen),
  and the LSTM's mean weight and how often it was chosen;
- the load average, since the 2 cores are shared.

    OMP_NUM_THREADS=2 .venv/bin/python bench/lstm.py [--workspaces 1000] [--no-ensemble]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from bench.common import out_dir  # noqa: E402
from bench.prepare import prepared_platform  # noqa: E402

D = date(2026, 11, 24)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def _report(done: list[Path], n_shards: int, h: int, shards_total: int) -> None:
    """Summary over the shards finished so far (each shard is fitted on its own, as in the pipeline)."""
    from pipelines.consumption.evaluation import summarize

    fits = pd.DataFrame([json.loads((d / "fit.json").read_text()) for d in done])
    print(f"\n=== {len(done)} of {shards_total} shards done ({int(fits['series'].sum())} workspaces scored) ===")
    print(f"LSTM training (one fit per shard on the holdout split's training part): {fits['seconds'].sum():.1f} s "
          f"wall in all, {fits['seconds'].median():.1f} s median per fit; peak RSS of the benchmark process "
          f"{fits['peak_rss_mib'].max():.0f} MiB (data loaded before the first fit: {fits['rss_before_mib'].min():.0f} MiB)")
    print(fits.drop(columns=["peak_rss_mib", "rss_before_mib"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    cols = ["model", "n_series", "median_mase", "median_wape", "pooled_wape", "coverage_80", "coverage_95"]
    summary = summarize(pd.concat([pd.read_parquet(d / "per_series.parquet") for d in done], ignore_index=True))
    print(f"\nHoldout (last {h} days, unseen), workspace totals:")
    print(summary.sort_values("median_mase")[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    s = summary.set_index("model")["median_mase"]
    if "Ensemble with LSTM" not in s:
        return
    print(f"\nEnsemble fit + predict wall time: with LSTM {fits['ensemble_with_s'].sum():.0f} s (its backtest trains "
          f"the LSTM once per window and once more at the end: refit), without LSTM {fits['ensemble_without_s'].sum():.0f} s "
          f"(reusing the first ensemble's backtest windows: only its final refits)")
    bt = pd.concat([pd.read_parquet(d / "backtest.parquet") for d in done], ignore_index=True)
    print("\nRolling-origin backtest inside the ensemble with LSTM (median MASE per member over workspaces; the "
          "weights are chosen on these windows):")
    print(bt.groupby("model")["mase"].median().sort_values().to_string(float_format=lambda v: f"{v:.3f}"))
    w = pd.concat([pd.read_parquet(d / "weights.parquet") for d in done], ignore_index=True)
    print(f"\nLSTM mean weight in the ensemble: {w['LSTM'].mean():.3f} (positive weight for {(w['LSTM'] > 0).mean():.0%} "
          f"of workspaces); choices: {w['choice'].value_counts().to_dict()}")
    print(f"ensemble median MASE: with LSTM {s['Ensemble with LSTM']:.3f}, without {s['Ensemble without LSTM']:.3f}; "
          f"LSTM alone {s['LSTM']:.3f}, ETS {s['ETS']:.3f}, seasonal naive {s['SeasonalNaive']:.3f} (target: "
          f"ensemble with LSTM <= 0.84: {'met' if s['Ensemble with LSTM'] <= 0.84 else 'missed'})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--shards", type=int, nargs="*", help="shards to run (default: all); finished ones are reused")
    ap.add_argument("--fresh", action="store_true", help="recompute shards already finished")
    ap.add_argument("--no-ensemble", action="store_true", help="only the LSTM, seasonal naive and ETS")
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    from models.forecasting import ETS, Ensemble, GlobalLSTM, Robust, SeasonalNaive, evaluate
    from models.forecasting.evaluation import shared_backtest_windows
    from pipelines.consumption.evaluation import series_metrics
    from core.shards import in_shard
    from pipelines.consumption.forecast import _with_levels, ensemble_params, lstm_params
    from pipelines.features.builders import daily_series
    from pipelines.features.store import load_daily_aggregates

    settings, _ = prepared_platform(args.workspaces)
    h = settings.forecast_holdout_days
    agg = load_daily_aggregates(settings.offline_store_dir, D, since=D - timedelta(days=settings.forecast_history_days - 1))
    totals = daily_series(agg, D)
    del agg
    cutoff = pd.Timestamp(D) - pd.Timedelta(days=h)
    root = out_dir(f"lstm_{args.workspaces}{'_no_ensemble' if args.no_ensemble else ''}")
    print(f"LSTM benchmark: {args.workspaces} workspaces, as of {D}, holdout the last {h} days (unseen), "
          f"{settings.shards} shards, torch threads {min(settings.threads, 2)}, caps {lstm_params(settings)}; "
          f"load average at start {_load()} (2 cores); results per shard in {root}", flush=True)
    rss_before = _peak_rss_mib()
    for shard in args.shards if args.shards is not None else range(settings.shards):
        folder = root / f"shard_{shard}"
        if (folder / "fit.json").exists() and not args.fresh:
            print(f"  shard {shard}: reusing {folder}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        part = totals[in_shard(totals["unique_id"], shard, settings.shards)]
        train, actual = part[part["ds"] <= cutoff], part[part["ds"] > cutoff]
        long_enough = train.groupby("unique_id").size().loc[lambda n: n >= settings.forecast_min_history_days].index
        train = train[train["unique_id"].isin(long_enough)]
        actual = actual[actual["unique_id"].isin(long_enough)]
        params = ensemble_params(settings)
        forecasts = {}
        t0 = time.perf_counter()
        lstm = GlobalLSTM(n_jobs=settings.threads, seed=0, **lstm_params(settings))
        member = (Robust(lstm) if params["robust"] else lstm).fit(train, freq="D")
        forecasts["LSTM"] = _with_levels(member, h)
        fit = {"shard": shard, "series": int(train["unique_id"].nunique()), "seconds": time.perf_counter() - t0,
               **lstm.n_windows_, "epochs": lstm.epochs_, "best_val_l1": min(lstm.validation_loss_),
               "peak_rss_mib": _peak_rss_mib(), "rss_before_mib": rss_before}
        print(f"  shard {shard}: LSTM alone {fit['seconds']:.1f} s ({lstm.n_windows_['train']} windows, "
              f"{lstm.epochs_} epochs), load {_load()}", flush=True)
        forecasts["SeasonalNaive"] = _with_levels(SeasonalNaive().fit(train, freq="D"), h)
        ets = ETS(n_jobs=settings.threads)
        forecasts["ETS"] = _with_levels((Robust(ets) if params["robust"] else ets).fit(train, freq="D"), h)
        if not args.no_ensemble:
            # the second ensemble reuses the first one's backtest windows of the shared members (refit=True)
            with shared_backtest_windows():
                for label, include in (("with", True), ("without", False)):
                    t0 = time.perf_counter()
                    ens = Ensemble(**{**params, "include_lstm": include}).fit(train, freq="D")
                    forecasts[f"Ensemble {label} LSTM"] = _with_levels(ens, h)
                    fit[f"ensemble_{label}_s"] = time.perf_counter() - t0
                    if include:
                        evaluate(ens.backtest_, train).per_series.to_parquet(folder / "backtest.parquet")
                        ens.weights_.to_parquet(folder / "weights.parquet")
            print(f"  shard {shard}: ensembles done, load {_load()}", flush=True)
        series_metrics(actual, forecasts, train).to_parquet(folder / "per_series.parquet")
        (folder / "fit.json").write_text(json.dumps(fit))
        done = sorted(d for d in root.glob("shard_*") if (d / "fit.json").exists())
        _report(done, settings.shards, h, settings.shards)
    print(f"load average at the end {_load()}")


if __name__ == "__main__":
    main()
