"""Benchmark: one training shard of a prepared platform at several shard counts, to see what a shard's cost and
memory follow (its own workspaces, or the whole platform's).

Shard 0 of each ``--shards`` count is trained (``pipelines.retrain.retrain_shard_step``, as the retrain DAG's
``train`` task runs it) in a fresh process on the prepared platform's offline store (``bench/prepare.py``, or
``--store``): workspaces and series in the shard, wall seconds, and the process's peak RSS.

    .venv/bin/python bench/train_shard.py --workspaces 10000 --kind consumption --shards 80 40 20

Run it from a clone of another commit (``PYTHONPATH=<clone> python <clone>/bench/train_shard.py --store ...``) to
compare two versions of the code on the same store.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import in_process  # noqa: E402

RUN_DATE = "2026-11-23"  # the day before the prepared platform's last day: what a retrain trains through


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=10000, help="the prepared platform (bench/prepare.py)")
    ap.add_argument("--store", type=Path, default=None,
                    help="the platform's data dir (default bench/out/platform_<n>/pae); its features of "
                         f"{RUN_DATE} must be built (bench/scale.py --part cluster builds them)")
    ap.add_argument("--kind", default="consumption")
    ap.add_argument("--shards", type=int, nargs="+", required=True, help="shard counts; shard 0 of each is trained")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pae_bench_train_shard"))
    args = ap.parse_args()

    from bench.prepare import platform_dir
    from core.settings import Settings
    from pipelines.retrain import retrain_shard_step

    root = args.store or platform_dir(args.workspaces) / "pae"
    base = Settings(data_dir=root)
    print(f"train shard benchmark: {args.kind}, store {root}, 2 cores, load average {os.getloadavg()[0]:.1f}",
          flush=True)
    for n in args.shards:
        settings = base.model_copy(update={"data_dir": args.out / f"{args.kind}_{n}", "shards": n,
                                           "storage_uri": str(base.storage_root)})
        r = in_process(retrain_shard_step, RUN_DATE, 0, settings, args.kind)
        ref = r["result"]
        print(f"{args.kind} shard 0 of {n}: {ref.get('n_workspaces')} workspaces, {ref.get('n_series')} series, "
              f"{r['seconds']:.1f} s, peak {r['peak_rss_mib']:.0f} MiB (largest child "
              f"{r['children_peak_rss_mib']:.0f}); load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
