"""Benchmark: generate + load, then extract + features, at 100 and 1,000 workspaces (730 days).

Prints wall time and peak RSS (of the Python process; the PostgreSQL server's memory is not included)
per phase, rows, and the growth factor between the scales. Targets (2 cores): generate + load ≤ 5 min,
extract + features ≤ 3 min, peak ≤ 4 GB, linear growth with workspaces.

    .venv/bin/python bench/data_platform.py [--scales 100 1000] [--days 730]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import out_dir, throwaway_database, timed_phase  # noqa: E402

END = date(2026, 11, 24)


def _generate(n: int, days: int, folder: Path):
    from pipelines.simulator.generate import generate_platform

    s = generate_platform(n, days, seed=7, out_dir=folder, end_date=END)
    return {"rows": s.n_event_rows, "users": s.n_users, "agents": s.n_agents}


def _load(url: str, folder: Path):
    from core.db import get_engine
    from pipelines.ingest.load import load_events

    s = load_events(get_engine(url=url), folder / "events", folder / "rejects")
    return {"inserted": s.rows_inserted, "rejected": s.rows_rejected}


def _extract(url: str, folder: Path):
    from core.db import get_engine
    from pipelines.ingest.extract import extract

    return extract(get_engine(url=url), END, folder / "staging", 3).rows


def _features(url: str, folder: Path):
    from core.db import get_engine
    from pipelines.features.store import build_feature_store

    return build_feature_store(get_engine(url=url), folder / "staging", folder / "store", END).rows


def run_scale(n: int, days: int) -> dict:
    folder = out_dir(f"data_platform_{n}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    res = {"workspaces": n}
    with throwaway_database() as url:
        for name, fn, args in (("generate", _generate, (n, days, folder)), ("load", _load, (url, folder)),
                               ("extract", _extract, (url, folder)), ("features", _features, (url, folder))):
            wall, rss, out = timed_phase(fn, *args)
            res[name] = {"seconds": wall, "peak_rss_mib": rss, "result": out}
            print(f"  {n:>5} ws  {name:<9} {wall:7.1f} s  peak {rss:7.0f} MiB  {out}", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--days", type=int, default=730)
    args = ap.parse_args()
    print(f"data platform benchmark: {args.days} days, scales {args.scales}, 2 cores")
    results = [run_scale(n, args.days) for n in args.scales]
    print("\n| workspaces | users | event rows | generate+load s | extract+features s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        gl = r["generate"]["seconds"] + r["load"]["seconds"]
        ef = r["extract"]["seconds"] + r["features"]["seconds"]
        peak = max(r[k]["peak_rss_mib"] for k in ("generate", "load", "extract", "features"))
        print(f"| {r['workspaces']} | {r['generate']['result']['users']:,} | {r['generate']['result']['rows']:,} "
              f"| {gl:.1f} | {ef:.1f} | {peak:.0f} |")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        ratio_ws = b["workspaces"] / a["workspaces"]
        for phase in ("generate", "load", "extract", "features"):
            f = b[phase]["seconds"] / max(a[phase]["seconds"], 1e-9)
            print(f"  {phase:<9} time grows {f:5.1f}x for {ratio_ws:.0f}x workspaces")


if __name__ == "__main__":
    main()
