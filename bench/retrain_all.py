"""Training split from scoring, every kind: a full retrain of all kinds, then one nightly scoring run of all kinds.

On the prepared platform (``bench/prepare.py``), with C = the platform's last day - ``--days-before-end``:

1. **retrain at C - 7** of every kind whose training is split from scoring (``pipelines.retrain.retrain``: for
   consumption holdout evaluation, backtests, weights, calibration, fits; for the other kinds their own training
   and selection), MLflow tracking and registration: wall and CPU seconds per kind;
2. **nightly scoring at C**: the nightly ``predict_step`` and ``finalize_step`` of every kind (what the DAG maps),
   which score with the version each retrain registered (no backtest), without publishing; wall and CPU seconds
   per kind and the mode each kind ran in (``scored`` or trained).

Targets of issue 16 at 1,000 workspaces: the nightly scoring of all kinds <= 120 s, a full retrain of all kinds
<= 300 s. Features are built for both dates first (timed apart: that is the features step, not training).
MLflow state goes to a tracking store of its own under ``bench/out/retrain_all_<n>/``, recreated each run; the
prepared platform's model decisions, retrain records and ``ml_models`` rows are cleared first (no models yet).

    .venv/bin/python bench/retrain_all.py --workspaces 100
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import out_dir  # noqa: E402
from bench.prepare import END, prepared_platform  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the members' worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=100)
    ap.add_argument("--days-before-end", type=int, default=30, help="C = the platform's last day minus this")
    ap.add_argument("--stale-days", type=int, default=7, help="age of the champions that score night C")
    ap.add_argument("--kinds", default="all", help="comma-separated kinds (default: every kind)")
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    from pipelines.kinds import select_kinds
    from pipelines.nightly import features_step, finalize_step, kind_shards_step, predict_step
    from pipelines.retrain import retrain, retrainable_kinds

    import shutil

    import sqlalchemy as sa

    base, url = prepared_platform(args.workspaces)
    out = out_dir(f"retrain_all_{args.workspaces}")
    # no models yet: a fresh MLflow store and outputs, and no decisions or retrains of earlier runs in the database
    # (other benchmarks on the same prepared platform track to other MLflow stores)
    shutil.rmtree(out / "pae", ignore_errors=True)
    (out / "mlflow.db").unlink(missing_ok=True)
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("truncate analytics.model_decisions, analytics.retrain_runs, analytics.ml_models"))
    settings = base.model_copy(update={"database_url": url, "threads": 2, "data_dir": out / "pae",
                                       "mlflow_tracking_uri": f"sqlite:///{(out / 'mlflow.db').resolve()}"})
    # the prepared platform's staging and offline store, this run's own outputs
    settings = settings.model_copy(update={"storage_uri": str(base.storage_root)})
    kinds = select_kinds(None if args.kinds == "all" else args.kinds)
    split = [k for k in retrainable_kinds() if k in kinds]
    cutoff = END - timedelta(days=args.days_before_end)
    trained = cutoff - timedelta(days=args.stale_days)
    print(f"retrain-all benchmark: {args.workspaces} workspaces, {settings.shards} shards, 2 shared cores; kinds "
          f"{kinds} (split from scoring: {split}); retrain through {trained}, nightly scoring at {cutoff}")

    for d in (trained, cutoff):
        t0 = time.perf_counter()
        features_step(d.isoformat(), settings)
        print(f"features of {d}: {time.perf_counter() - t0:.1f} s (not counted below)")

    print(f"\n1. full retrain through {trained}")
    total_wall = total_cpu = 0.0
    for kind in split:
        t0, c0 = time.perf_counter(), cpu_seconds()
        res = retrain(kind, "manual", trained.isoformat(), settings)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"  {kind:13s} {wall:7.1f} s wall {cpu:7.1f} s CPU -> v{res['model_version']} ({res['decision']})")
    print(f"  all kinds     {total_wall:7.1f} s wall {total_cpu:7.1f} s CPU (target <= 300 s at 1,000 workspaces)")

    print(f"\n2. nightly scoring at {cutoff} (predict + finalize of every kind, not published)")
    total_wall = total_cpu = 0.0
    for kind in kinds:
        t0, c0 = time.perf_counter(), cpu_seconds()
        shards = [predict_step(cutoff.isoformat(), kind, k, kinds, settings) for k in kind_shards_step(kind, settings)]
        t_shards = time.perf_counter() - t0
        result = finalize_step(cutoff.isoformat(), kind, shards, kinds, settings)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        mode = result.details.get("mode") or ("trained" if result.mlflow_run_id else "?")
        per_shard = ", ".join(f"{(s.details or {}).get('seconds', float('nan')):.1f}" for s in shards)
        print(f"  {kind:13s} {wall:7.1f} s wall {cpu:7.1f} s CPU  mode={mode}  status={result.status}  "
              f"shards {t_shards:.1f} s ({per_shard}) finalize {wall - t_shards:.1f} s  rows {result.counts}")
    print(f"  all kinds     {total_wall:7.1f} s wall {total_cpu:7.1f} s CPU (target <= 120 s at 1,000 workspaces)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process {peak:.0f} MiB")


if __name__ == "__main__":
    main()
