"""Benchmark: a generated platform's event files loaded in ``--calls`` ``load_events`` calls (1: the whole folder in
one call and one transaction, as ``pae load-events <folder>`` and ``bench/prepare.py`` load it), into a throwaway
database: seconds per million rows, the loader's phases (``LoadSummary.seconds``), and the phases of the first
and the last third of the files (one call only).

    .venv/bin/python bench/load_calls.py --workspaces 1000 --calls 1
    .venv/bin/python bench/load_calls.py --workspaces 10000 --calls 1 --events bench/out/platform_10000/gen
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import throwaway_database  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, required=True)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--events", type=Path, default=None, help="a generated platform folder (holding events/)")
    args = ap.parse_args()

    import pipelines.ingest.load as load
    from core.db import get_engine
    from pipelines.simulator.generate import generate_platform

    work = Path(tempfile.mkdtemp(prefix="pae_load_calls_"))
    gen = args.events or work / "gen"
    if not (gen / "events").exists():
        generate_platform(args.workspaces, args.days, seed=7, out_dir=gen, end_date=date(2026, 11, 24))
    files = sorted((gen / "events").iterdir())
    args.calls = min(args.calls, len(files))
    marks = []  # (file_no, cumulative phase seconds) after each file is staged
    stage_file = load._stage_file

    def staged(conn, file, file_no, *rest):
        out = stage_file(conn, file, file_no, *rest)
        marks.append((file_no, dict(rest[-1].seconds)))
        return out

    load._stage_file = staged
    print(f"load benchmark: {args.workspaces} workspaces, {len(files)} files in {args.calls} call(s), 2 cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with throwaway_database("pae_bench_load_calls") as url:
        engine = get_engine(url=url)
        rows, t0 = 0, time.perf_counter()
        for k in range(args.calls):
            folder = Path(tempfile.mkdtemp(dir=work))
            for f in files[k * len(files) // args.calls:(k + 1) * len(files) // args.calls]:
                os.symlink(f, folder / f.name)
            s = load.load_events(engine, folder, work / "rejects")
            rows += s.rows_inserted
            print(f"  call {k + 1}: {s.rows_inserted:,} rows; phase seconds "
                  + ", ".join(f"{p} {v:.1f}" for p, v in s.seconds.items()), flush=True)
        wall = time.perf_counter() - t0
        engine.dispose()
    print(f"{args.workspaces} workspaces, {args.calls} call(s): {rows:,} rows in {wall:.1f} s, "
          f"{wall / rows * 1e6:.1f} s per M rows; load average {os.getloadavg()[0]:.1f}")
    n = len(marks)
    if args.calls > 1:  # each call's phase seconds start at zero: thirds only within one call
        return
    for name, (a, b) in (("first third", (0, n // 3)), ("last third", (2 * n // 3, n - 1))):
        before, after = marks[a][1], marks[b][1]
        print(f"  {name} (files {marks[a][0]}-{marks[b][0]}): phase seconds "
              + ", ".join(f"{p} {after.get(p, 0) - before.get(p, 0):.1f}" for p in after))


if __name__ == "__main__":
    main()
