"""Benchmark: how loading and the nightly run grow with the number of workspaces (issue 14, "Scale").

Two parts, each at several scales on a throwaway database per scale (DATABASE_URL's server):

* ``load``: the generated platform's files loaded into the month-partitioned ``analytics.usage_events``
  (``sql/019``), one ``load_events`` call (one transaction) per generated file, so the last files land in a
  table already holding the earlier ones: seconds per million rows over the whole load, over its first and
  its last third of files, and the ratio between scales (linear: the same seconds per million rows);
* ``nightly``: the nightly run (``pipelines.nightly``'s steps, as Airflow runs them: each step a fresh
  process, shards one after the other, i.e. one worker) for the run date: wall time per stage (from
  ``analytics.pipeline_runs`` and measured around the process), peak RSS per step process (the process itself
  and, separately, its largest child: forked forecasting workers, MLflow's helper processes), rows written per
  table, and the growth of each figure between scales.

Figures are measured on this machine: 2 cores shared with other jobs (the load average is printed beside
them). Set ``PAE_STORAGE_URI`` (and ``PAE_S3_ENDPOINT_URL``) to stage and store features on an object store.

    .venv/bin/python bench/scale.py --part load --workspaces 100 300
    .venv/bin/python bench/scale.py --part nightly --workspaces 50 150 [--kinds consumption,churn]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import out_dir, throwaway_database  # noqa: E402

END = date(2026, 11, 24)
SEED = 7
WRITTEN_TABLES = ("usage_events", "workspace_daily_metrics", "workspace_growth_metrics", "agent_daily_metrics",
                  "ml_features", "predictions", "churn_predictions", "growth_status", "growth_milestones",
                  "agent_error_alerts", "agent_error_forecasts", "prediction_snapshots", "prediction_accuracy")


def _child(fn: Callable, args: tuple, queue) -> None:
    t0 = time.perf_counter()
    try:
        result, err = fn(*args), None
    except BaseException as exc:  # reported to the parent, which re-raises
        result, err = None, f"{type(exc).__name__}: {exc}"
    queue.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, result, err))


def in_process(fn: Callable, *args) -> dict:
    """``fn(*args)`` in a fresh process (as an Airflow task runs): wall seconds, peak RSS (MiB) of the process
    and of its largest child, and the result."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    wall, rss, rss_children, result, err = q.get()
    p.join()
    if err:
        raise RuntimeError(f"{getattr(fn, '__name__', fn)} failed: {err}")
    return {"seconds": wall, "peak_rss_mib": rss, "children_peak_rss_mib": rss_children, "result": result}


def _generate(n: int, days: int, folder: Path) -> dict:
    from pipelines.simulator.generate import generate_platform

    s = generate_platform(n, days, seed=SEED, out_dir=folder, end_date=END)
    return {"event_rows": s.n_event_rows, "users": s.n_users, "agents": s.n_agents, "files": len(s.event_files)}


def generated(n: int, days: int) -> tuple[Path, dict]:
    """The generated platform of ``n`` workspaces (re-used when its manifest has the same arguments)."""
    folder = out_dir(f"scale_gen_{n}")
    manifest = folder / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if m["arguments"] == {"n_workspaces": n, "days": days, "seed": SEED, "end_date": END.isoformat(),
                              "users_per_workspace": m["arguments"].get("users_per_workspace")}:
            return folder, {"event_rows": m["counts"]["event_rows"], "users": m["counts"]["users"],
                            "files": len(m["event_files"]), "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    info = in_process(_generate, n, days, folder)
    print(f"  generated {n} workspaces in {info['seconds']:.0f} s: {info['result']}", flush=True)
    return folder, info["result"]


def _load_files(url: str, files: list[str], rejects: str) -> list[dict]:
    from core.db import get_engine
    from pipelines.ingest.load import load_events

    engine = get_engine(url=url)
    out = []
    for f in files:
        t0 = time.perf_counter()
        s = load_events(engine, Path(f), Path(rejects))
        out.append({"file": Path(f).name, "rows": s.rows_inserted, "seconds": time.perf_counter() - t0})
    return out


def _per_million(parts: list[dict]) -> float:
    rows = sum(p["rows"] for p in parts)
    return sum(p["seconds"] for p in parts) / rows * 1e6 if rows else float("nan")


def load_scale(n: int, days: int) -> dict:
    folder, gen = generated(n, days)
    files = sorted(str(p) for p in (folder / "events").glob("part-*.parquet"))
    with throwaway_database("pae_bench_scale") as url:
        info = in_process(_load_files, url, files, str(folder / "rejects"))
        per_file = info["result"]
        from core.db import get_engine
        import sqlalchemy as sa

        with get_engine(url=url).connect() as conn:
            partitions = conn.execute(sa.text(
                "select count(*) from pg_inherits where inhparent = 'analytics.usage_events'::regclass")).scalar_one()
    third = max(1, len(per_file) // 3)
    res = {"workspaces": n, "rows": sum(p["rows"] for p in per_file), "files": len(per_file),
           "seconds": sum(p["seconds"] for p in per_file), "peak_rss_mib": info["peak_rss_mib"],
           "s_per_million": _per_million(per_file), "first_third_s_per_million": _per_million(per_file[:third]),
           "last_third_s_per_million": _per_million(per_file[-third:]), "partitions": partitions,
           "load_average": os.getloadavg()[0]}
    print(f"  {n:>6} ws  {res['rows']:>11,} rows  {res['files']:>3} files  {res['seconds']:7.1f} s  "
          f"{res['s_per_million']:6.1f} s/M rows (first third {res['first_third_s_per_million']:.1f}, "
          f"last third {res['last_third_s_per_million']:.1f})  {partitions} partitions  "
          f"peak {res['peak_rss_mib']:.0f} MiB  load avg {res['load_average']:.1f}", flush=True)
    return res


def _load_all(url: str, events: str, rejects: str) -> dict:
    from core.db import get_engine
    from pipelines.ingest.load import load_events

    s = load_events(get_engine(url=url), Path(events), Path(rejects))
    return {"inserted": s.rows_inserted}


def _step(name: str, *args):
    from core.settings import Settings
    from pipelines import nightly

    settings: Settings = args[-1]
    return getattr(nightly, name)(*args[:-1], settings)


def nightly_scale(n: int, days: int, kinds: str | None) -> dict:
    from core.settings import Settings

    folder, gen = generated(n, days)
    data_dir = out_dir(f"scale_run_{n}")
    shutil.rmtree(data_dir, ignore_errors=True)
    steps: list[dict] = []

    def run(stage: str, name: str, *args) -> object:
        info = in_process(_step, name, *args, settings)
        steps.append({"stage": stage, "seconds": info["seconds"], "peak_rss_mib": info["peak_rss_mib"],
                      "children_peak_rss_mib": info["children_peak_rss_mib"]})
        print(f"    {stage:<28} {info['seconds']:7.1f} s  peak {info['peak_rss_mib']:6.0f} MiB"
              f" (largest child {info['children_peak_rss_mib']:.0f} MiB)", flush=True)
        return info["result"]

    with throwaway_database("pae_bench_scale") as url:
        settings = Settings(database_url=url, data_dir=data_dir)
        load = in_process(_load_all, url, str(folder / "events"), str(folder / "rejects"))
        steps.append({"stage": "load_events", "seconds": load["seconds"], "peak_rss_mib": load["peak_rss_mib"],
                      "children_peak_rss_mib": 0.0})
        print(f"    {'load_events':<28} {load['seconds']:7.1f} s  {load['result']}", flush=True)
        from pipelines.kinds import select_kinds

        d = END.isoformat()
        for stage in ("extract_step", "validate_raw_step", "features_step", "validate_features_step"):
            run(stage.removesuffix("_step"), stage, d)
        results = []
        selected = select_kinds(kinds)
        for kind in selected:
            shard_ids = in_process(_step, "kind_shards_step", kind, settings)["result"]
            shards = [run(f"{kind} shard {k}", "predict_step", d, kind, k, selected) for k in shard_ids]
            results.append(run(f"{kind} finalize", "finalize_step", d, kind, shards, selected))
        published = run("publish", "publish_step", d, results)
        run("monitor", "monitor_step", d)
        run("record_run", "record_run_step", d, published)
        import sqlalchemy as sa
        from core.db import get_engine

        with get_engine(url=url).connect() as conn:
            recorded = [dict(r._mapping) for r in conn.execute(sa.text(
                "select step, status, duration_s, row_counts from analytics.pipeline_runs"
                " where logical_date = :d order by started_at"), {"d": END})]
            rows = {t: conn.execute(sa.text(f"select count(*) from analytics.{t}")).scalar_one()
                    for t in WRITTEN_TABLES
                    if conn.execute(sa.text("select to_regclass(:t)"), {"t": f"analytics.{t}"}).scalar()}
    shutil.rmtree(data_dir, ignore_errors=True)
    return {"workspaces": n, "users": gen.get("users"), "event_rows": gen.get("event_rows"), "steps": steps,
            "recorded": recorded, "rows": rows, "load_average": os.getloadavg()[0]}


def _stage_group(stage: str) -> str:
    return stage.split(" shard ")[0] + " shards" if " shard " in stage else stage


def _recorded_group(step: str) -> str:
    """A pipeline_runs step name as the stage it belongs to (predict_churn_3 -> churn shards)."""
    if step.startswith("predict_"):
        return step[len("predict_"):].rsplit("_", 1)[0] + " shards"
    if step.startswith("finalize_"):
        return step[len("finalize_"):] + " finalize"
    return {"nightly": "record_run"}.get(step, step)


def _recorded_seconds(result: dict, group: str) -> float:
    return sum(x["duration_s"] or 0.0 for x in result["recorded"] if _recorded_group(x["step"]) == group)


def print_nightly(results: list[dict]) -> None:
    base = results[0]
    print("\nseconds per stage: the step's process, wall (in brackets: the step's own record in pipeline_runs,"
          " without process start and imports)")
    print("\n| stage | " + " | ".join(f"{r['workspaces']:,} ws s" for r in results)
          + " | growth | peak RSS MiB (process / largest child, largest scale) |")
    print("|---|" + "---:|" * len(results) + "---:|---:|")
    groups: dict[str, dict[int, list[dict]]] = {}
    for r in results:
        for s in r["steps"]:
            groups.setdefault(_stage_group(s["stage"]), {}).setdefault(r["workspaces"], []).append(s)
    for g, by_n in groups.items():
        secs = [sum(s["seconds"] for s in by_n.get(r["workspaces"], [])) for r in results]
        last = by_n.get(results[-1]["workspaces"], [])
        peak = max((s["peak_rss_mib"] for s in last), default=0)
        peak_w = max((s["children_peak_rss_mib"] for s in last), default=0)
        growth = secs[-1] / secs[0] if secs[0] > 0 else float("nan")
        cells = [f"{x:.1f}" + (f" ({_recorded_seconds(r, g):.1f})" if g != "load_events" else "")
                 for x, r in zip(secs, results)]
        print(f"| {g} | " + " | ".join(cells) + f" | {growth:.2f}x | {peak:.0f} / {peak_w:.0f} |")
    totals = [sum(s["seconds"] for s in r["steps"] if s["stage"] != "load_events") for r in results]
    scale = results[-1]["workspaces"] / base["workspaces"]
    print(f"| **nightly run (without load)** | " + " | ".join(f"{t:.1f}" for t in totals)
          + f" | {totals[-1] / totals[0]:.2f}x for {scale:.1f}x workspaces | |")
    print("\nrows written: " + "; ".join(
        f"{r['workspaces']:,} ws: " + ", ".join(f"{t} {c:,}" for t, c in r["rows"].items()) for r in results))
    print("pipeline_runs (seconds recorded per step, largest scale): " + ", ".join(
        f"{x['step']} {x['duration_s']:.1f} ({x['status']})" for x in results[-1]["recorded"] if x["duration_s"]))
    print("load average at the end of each scale: " + ", ".join(f"{r['load_average']:.1f}" for r in results))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("load", "nightly"), required=True)
    ap.add_argument("--workspaces", type=int, nargs="+", required=True, help="scales, smallest first")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--kinds", default=None, help="prediction kinds of the nightly run (default: all)")
    args = ap.parse_args()
    if sorted(args.workspaces) != args.workspaces or min(args.workspaces) < 1:
        ap.error("--workspaces: positive scales, smallest first (e.g. 50 150)")
    print(f"scale benchmark ({args.part}): {args.days} days, workspaces {args.workspaces}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.part == "load":
        res = [load_scale(n, args.days) for n in args.workspaces]
        print("\n| workspaces | rows | load s | s per M rows | first third | last third | partitions |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in res:
            print(f"| {r['workspaces']:,} | {r['rows']:,} | {r['seconds']:.1f} | {r['s_per_million']:.1f} | "
                  f"{r['first_third_s_per_million']:.1f} | {r['last_third_s_per_million']:.1f} | {r['partitions']} |")
        print(f"s per million rows, largest / smallest scale: {res[-1]['s_per_million'] / res[0]['s_per_million']:.2f}"
              f" (1.00 = linear) for {res[-1]['rows'] / res[0]['rows']:.1f}x the rows")
    else:
        res = [nightly_scale(n, args.days, args.kinds) for n in args.workspaces]
        print_nightly(res)
    (out_dir("scale") / f"{args.part}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
