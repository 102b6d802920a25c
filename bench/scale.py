"""Benchmark: how loading and the nightly run grow with the number of workspaces (issue 14, "Scale").

Parts, each at several scales on a throwaway database per scale (DATABASE_URL's server):

* ``load``: the generated platform's files loaded into the month-partitioned ``analytics.usage_events``
  (``sql/019``), one ``load_events`` call (one transaction) per generated file, so the last files land in a
  table already holding the earlier ones: seconds per million rows over the whole load, over its first and
  its last third of files, and the ratio between scales (linear: the same seconds per million rows);
* ``nightly``: the nightly run (``pipelines.nightly``'s steps, as Airflow runs them: each step a fresh
  process, shards one after the other, i.e. one worker) for the run date: wall time per stage (from
  ``analytics.pipeline_runs`` and measured around the process), peak RSS per step process (the process itself
  and, separately, its largest child: forked forecasting workers, MLflow's helper processes), rows written per
  table, and the growth of each figure between scales;
* ``features``: the load (as ``load``), extract, then the features stage once per ``--shards`` count, each step
  in its own process (refresh, every workspace shard, merge): seconds and peak RSS per step, so the memory a
  worker needs for a features task at each scale;
* ``cluster``: the retrain and nightly DAGs on a real Celery cluster (see ``cluster_scale``);
* ``publish``: the publish stage alone (``pipelines.nightly.publish_part_step`` / ``publish_step``) on prediction
  sets of the nightly's shape (per workspace: ``PUBLISH_ROWS_PER_WORKSPACE``, measured at 1,000 workspaces), three
  nights in a row: the first night (inserts), the next night in 1 shard and the night after in ``--shards`` shards
  on ``--workers`` parallel processes (every value changed, as after a real retrain or new data), and a re-run of
  that night (nothing changes): wall, task-seconds, rows per second, peak RSS per task process.

Figures are measured on this machine: 2 cores shared with other jobs (the load average is printed beside
them). Set ``PAE_STORAGE_URI`` (and ``PAE_S3_ENDPOINT_URL``) to stage and store features on an object store.

    .venv/bin/python bench/scale.py --part load --workspaces 100 300
    .venv/bin/python bench/scale.py --part nightly --workspaces 50 150 [--kinds consumption,churn]
    .venv/bin/python bench/scale.py --part features --workspaces 1000 10000 --days 120 --shards 1 8
    .venv/bin/python bench/scale.py --part publish --workspaces 1000 3000 --shards 4 --workers 2
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
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import out_dir, throwaway_database  # noqa: E402
from bench.prepare import _recreate_database as _fresh_database, _server_url as _server  # noqa: E402

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


def _load_files(url: str, calls: list[list[str]], rejects: str, batch_rows: int) -> list[dict]:
    """One ``load_events`` call (one transaction) per group of files: a folder of links to them."""
    import tempfile

    from core.db import get_engine
    from pipelines.ingest.load import load_events

    engine = get_engine(url=url)
    out = []
    fpi0 = _fpi(engine)
    third = max(1, len(calls) // 3)
    marks = {0, third, len(calls) - third}  # index block counts at the thirds' edges
    blocks = {}
    for i, group in enumerate(calls):
        if i in marks:
            blocks[i] = _index_blocks(engine)
        with tempfile.TemporaryDirectory(prefix="pae_load_") as tmp:
            for f in group:
                (Path(tmp) / Path(f).name).symlink_to(f)
            path = Path(group[0]) if len(group) == 1 else Path(tmp)
            w0, t0 = _wal(engine), time.perf_counter()
            s = load_events(engine, path, Path(rejects), batch_rows=batch_rows)
            secs, w1 = time.perf_counter() - t0, _wal(engine)
        out.append({"file": Path(group[0]).name, "files": len(group), "rows": s.rows_inserted, "seconds": secs,
                    "phases": s.seconds, "wal_bytes": w1["lsn"] - w0["lsn"],
                    "checkpoints": w1["checkpoints"] - w0["checkpoints"]})
    time.sleep(1.5)  # backends report their WAL statistics at most once a second
    out[-1]["wal_fpi_whole_load"] = _fpi(engine) - fpi0
    end = _index_blocks(engine)
    ranges = {"first_third": (0, third), "last_third": (len(calls) - third, len(calls))}
    out[-1]["index_blocks"] = {
        name: {k: {m: end_[k][m] - blocks[a].get(k, {}).get(m, 0) for m in ("hit", "read")}
               for k in end_}
        for name, (a, b) in ranges.items()
        for end_ in [blocks.get(b, end)]}
    return out


def _index_blocks(engine) -> dict[str, dict[str, int]]:
    """Buffer accesses of ``usage_events``' indexes so far, summed over the month partitions per index
    (``pg_statio_user_indexes``: ``hit`` in shared buffers, ``read`` from the OS); waits 1.5 s first, as
    backends report their statistics at most once a second."""
    import sqlalchemy as sa

    time.sleep(1.5)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select case when indexrelname like '%pkey' then 'primary key (event_key, event_time)'"
            " when indexrelname like '%workspace_id%' then '(workspace_id, event_time), agents'"
            " else '(event_time)' end as index, sum(idx_blks_hit)::bigint as hit, sum(idx_blks_read)::bigint as read"
            " from pg_statio_user_indexes where schemaname = 'analytics' and relname like 'usage_events%'"
            " group by 1")).all()
    return {r.index: {"hit": r.hit, "read": r.read} for r in rows}


def _wal(engine) -> dict:
    """The server's WAL position (bytes since its start) and checkpoints so far: server-wide, so other activity
    on the server counts too (the load average is printed beside)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint as lsn,"
            " checkpoints_timed + checkpoints_req as checkpoints from pg_stat_bgwriter")).mappings().one())


def _fpi(engine) -> int:
    """Full-page images written to the WAL so far (``pg_stat_wal``, server-wide)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("select wal_fpi from pg_stat_wal")).scalar_one()


def _wal_per_million(parts: list[dict]) -> dict:
    rows = sum(p["rows"] for p in parts) / 1e6
    return {"wal_mib_per_million": sum(p["wal_bytes"] for p in parts) / 2**20 / rows if rows else float("nan"),
            "checkpoints": sum(p["checkpoints"] for p in parts)}


def _per_million(parts: list[dict]) -> float:
    rows = sum(p["rows"] for p in parts)
    return sum(p["seconds"] for p in parts) / rows * 1e6 if rows else float("nan")


def load_scale(n: int, days: int, batch_rows: int) -> dict:
    """Each generated file in its own call when ``batch_rows`` is 0; else calls of as many files as make about
    ``batch_rows`` rows, each inserted in one batch."""
    folder, gen = generated(n, days)
    files = sorted(str(p) for p in (folder / "events").glob("part-*.parquet"))
    per_call = max(1, round(batch_rows / (gen["event_rows"] / len(files)))) if batch_rows else 1
    calls = [files[i:i + per_call] for i in range(0, len(files), per_call)]
    with throwaway_database("pae_bench_scale") as url:
        info = in_process(_load_files, url, calls, str(folder / "rejects"), batch_rows)
        per_file = info["result"]
        from core.db import get_engine
        import sqlalchemy as sa

        with get_engine(url=url).connect() as conn:
            partitions = conn.execute(sa.text(
                "select count(*) from pg_inherits where inhparent = 'analytics.usage_events'::regclass")).scalar_one()
        server = _server_settings(url)
    third = max(1, len(per_file) // 3)
    res = {"workspaces": n, "batch_rows": batch_rows, "rows": sum(p["rows"] for p in per_file),
           "files": len(files), "calls": len(per_file),
           "seconds": sum(p["seconds"] for p in per_file), "peak_rss_mib": info["peak_rss_mib"],
           "s_per_million": _per_million(per_file), "first_third_s_per_million": _per_million(per_file[:third]),
           "last_third_s_per_million": _per_million(per_file[-third:]), "partitions": partitions,
           "load_average": os.getloadavg()[0], "wal": _wal_per_million(per_file),
           "wal_first_third": _wal_per_million(per_file[:third]), "wal_last_third": _wal_per_million(per_file[-third:]),
           "fpi_per_million": per_file[-1]["wal_fpi_whole_load"] / (sum(p["rows"] for p in per_file) / 1e6),
           "server": server, "phases_first_third": _phases_per_million(per_file[:third]),
           "phases_last_third": _phases_per_million(per_file[-third:]),
           "index_blocks_per_million": {
               name: {k: {m: v / (sum(p["rows"] for p in part) / 1e6) for m, v in c.items()} for k, c in b.items()}
               for name, b in per_file[-1]["index_blocks"].items()
               for part in [per_file[:third] if name == "first_third" else per_file[-third:]]}}
    print(f"  {n:>6} ws  batch {batch_rows:,} rows  {res['rows']:>11,} rows  {res['files']:>3} files in "
          f"{res['calls']} calls  {res['seconds']:7.1f} s  "
          f"{res['s_per_million']:6.1f} s/M rows (first third {res['first_third_s_per_million']:.1f}, "
          f"last third {res['last_third_s_per_million']:.1f})  {partitions} partitions  "
          f"peak {res['peak_rss_mib']:.0f} MiB  load avg {res['load_average']:.1f}", flush=True)
    print(f"         WAL {res['wal']['wal_mib_per_million']:,.0f} MiB per M rows (first third "
          f"{res['wal_first_third']['wal_mib_per_million']:,.0f}, last third "
          f"{res['wal_last_third']['wal_mib_per_million']:,.0f}), full-page images per M rows "
          f"{res['fpi_per_million']:,.0f}, {res['wal']['checkpoints']} checkpoints; server {res['server']}", flush=True)
    first, last = res["phases_first_third"], res["phases_last_third"]
    print("         s per M rows by phase (first third / last third): "
          + ", ".join(f"{k} {first.get(k, 0):.1f} / {last.get(k, 0):.1f}" for k in last), flush=True)
    blocks = res["index_blocks_per_million"]
    print("         index blocks per M rows, hit + read from the OS (first third / last third): "
          + ", ".join(f"{k} {blocks['first_third'].get(k, {}).get('hit', 0):,.0f} + "
                      f"{blocks['first_third'].get(k, {}).get('read', 0):,.0f} / {c['hit']:,.0f} + {c['read']:,.0f}"
                      for k, c in blocks["last_third"].items()), flush=True)
    return res


def _phases_per_million(parts: list[dict]) -> dict[str, float]:
    """Seconds per million rows of each loader phase, and ``commit and other`` (the file's time outside them)."""
    rows = sum(p["rows"] for p in parts) / 1e6
    phases: dict[str, float] = {}
    for p in parts:
        for k, v in p["phases"].items():
            phases[k] = phases.get(k, 0.0) + v
    phases["commit and other"] = sum(p["seconds"] for p in parts) - sum(phases.values())
    return {k: v / rows for k, v in phases.items()} if rows else {}


def _server_settings(url: str) -> dict:
    """The server settings that decide how much WAL a load writes."""
    import sqlalchemy as sa

    from core.db import get_engine

    with get_engine(url=url).connect() as conn:
        return dict(conn.execute(sa.text(
            "select name, current_setting(name) from pg_settings where name in"
            " ('shared_buffers', 'max_wal_size', 'wal_compression', 'checkpoint_timeout') order by name")).all())


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


def features_scale(n: int, days: int, shard_counts: list[int]) -> dict:
    """Load the generated platform (timed, as ``load``), extract, then the features stage once per shard count,
    each step in a fresh process as Airflow runs it (refresh, every shard, merge), each count on its own store."""
    from core.settings import Settings

    folder, gen = generated(n, days)
    files = sorted(str(p) for p in (folder / "events").glob("part-*.parquet"))
    d = END.isoformat()
    base = out_dir(f"scale_features_{n}")
    shutil.rmtree(base, ignore_errors=True)
    with throwaway_database("pae_bench_scale") as url:
        load = in_process(_load_files, url, files, str(folder / "rejects"))
        per_file = load["result"]
        rows = sum(p["rows"] for p in per_file)
        print(f"  {n:>6} ws  load {rows:,} rows in {sum(p['seconds'] for p in per_file):.1f} s"
              f" ({_per_million(per_file):.1f} s/M rows)  peak {load['peak_rss_mib']:.0f} MiB", flush=True)
        first = Settings(database_url=url, data_dir=base / f"shards_{shard_counts[0]}", shards=shard_counts[0])
        extracted = in_process(_step, "extract_step", d, first)
        print(f"  {n:>6} ws  extract {extracted['seconds']:.1f} s  peak {extracted['peak_rss_mib']:.0f} MiB", flush=True)
        runs = []
        for k in shard_counts:
            settings = Settings(database_url=url, data_dir=base / f"shards_{k}", shards=k)
            if settings.staging_dir != first.staging_dir:
                shutil.copytree(first.staging_dir, settings.staging_dir)
            refresh = in_process(_step, "refresh_features_step", d, settings)
            shards = [in_process(_step, "features_shard_step", d, i, refresh["result"], settings) for i in range(k)]
            merge = in_process(_step, "merge_features_step", d, refresh["result"], [s["result"] for s in shards],
                               settings)
            run = {"shards": k, "refresh_s": refresh["seconds"], "refresh_mib": refresh["peak_rss_mib"],
                   "shard_s": [s["seconds"] for s in shards], "shard_mib": [s["peak_rss_mib"] for s in shards],
                   "merge_s": merge["seconds"], "merge_mib": merge["peak_rss_mib"], "rows": merge["result"]["rows"]}
            run["total_s"] = run["refresh_s"] + sum(run["shard_s"]) + run["merge_s"]
            runs.append(run)
            print(f"  {n:>6} ws  {k} shard(s): refresh {run['refresh_s']:.1f} s ({run['refresh_mib']:.0f} MiB), "
                  f"shards {sum(run['shard_s']):.1f} s (largest {max(run['shard_s']):.1f} s, "
                  f"{max(run['shard_mib']):.0f} MiB), merge {run['merge_s']:.1f} s ({run['merge_mib']:.0f} MiB)",
                  flush=True)
    shutil.rmtree(base, ignore_errors=True)
    return {"workspaces": n, "users": gen.get("users"), "rows": rows, "load_seconds": sum(p["seconds"] for p in per_file),
            "s_per_million": _per_million(per_file), "load_peak_mib": load["peak_rss_mib"],
            "extract_seconds": extracted["seconds"], "runs": runs, "load_average": os.getloadavg()[0]}


def print_features(results: list[dict]) -> None:
    print("\n| workspaces | users | event rows | load s | s per M rows | shards | refresh s (MiB) | shards: sum s, "
          "largest s (largest MiB) | merge s (MiB) | features total s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for x in r["runs"]:
            print(f"| {r['workspaces']:,} | {r['users']:,} | {r['rows']:,} | {r['load_seconds']:.1f} | "
                  f"{r['s_per_million']:.1f} | {x['shards']} | {x['refresh_s']:.1f} ({x['refresh_mib']:,.0f}) | "
                  f"{sum(x['shard_s']):.1f}, {max(x['shard_s']):.1f} ({max(x['shard_mib']):,.0f}) | "
                  f"{x['merge_s']:.1f} ({x['merge_mib']:,.0f}) | {x['total_s']:.1f} |")
    a, b = results[0], results[-1]
    if len(results) > 1:
        print(f"load, s per million rows: {b['s_per_million'] / a['s_per_million']:.2f}x at {b['workspaces']:,} "
              f"workspaces vs {a['workspaces']:,} ({b['rows'] / a['rows']:.1f}x the rows; 1.00 = linear)")
        for i, x in enumerate(b["runs"]):
            y = a["runs"][i]
            print(f"features with {x['shards']} shard(s): {x['total_s'] / y['total_s']:.2f}x the task-seconds for "
                  f"{b['workspaces'] / a['workspaces']:.1f}x workspaces; largest task process "
                  f"{max(x['refresh_mib'], x['merge_mib'], *x['shard_mib']):,.0f} MiB at {b['workspaces']:,}")
    print("load average at the end of each scale: " + ", ".join(f"{r['load_average']:.1f}" for r in results))


class WorkerMemory:
    """Samples, every ``every`` seconds in a thread, the RSS of each Celery worker's processes (the worker, its
    pool child, the task supervisor and the task process): per worker, the largest single process and the
    largest sum over its process tree."""

    def __init__(self, processes: dict, every: float = 0.5):
        import threading

        self.pids = {name: p.pid for name, p in processes.items() if name.startswith("worker-")}
        self.every = every
        self.peak_process = {n: 0.0 for n in self.pids}
        self.peak_tree = {n: 0.0 for n in self.pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        for name, pid in self.pids.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            rss = []
            for proc in procs:
                try:
                    rss.append(proc.memory_info().rss / 2**20)
                except psutil.NoSuchProcess:
                    pass
            if rss:
                self.peak_process[name] = max(self.peak_process[name], max(rss))
                self.peak_tree[name] = max(self.peak_tree[name], sum(rss))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _seconds(t: dict) -> float:
    from datetime import datetime

    if not (t.get("start_date") and t.get("end_date")):
        return 0.0
    return (datetime.fromisoformat(t["end_date"]) - datetime.fromisoformat(t["start_date"])).total_seconds()


def _task_stage(task_id: str) -> str:
    """A nightly or retrain task id as its stage: predict_consumption -> consumption shards."""
    if task_id == "build_features":
        return "features shards"
    if task_id == "publish_shard":
        return "publish shards"
    for prefix, suffix in (("predict_", " shards"), ("finalize_", " finalize"), ("plan_", " plan")):
        if task_id.startswith(prefix):
            return task_id[len(prefix):] + suffix
    return task_id


def stages(tis: list[dict]) -> dict[str, dict]:
    """Per stage: task count, summed task seconds, the span from its first start to its last end, and the
    workers that ran it."""
    from datetime import datetime

    out: dict[str, dict] = {}
    for t in tis:
        if t.get("state") != "success" or not t.get("start_date"):
            continue
        g = out.setdefault(_task_stage(t["task_id"]), {"tasks": 0, "task_seconds": 0.0, "start": None, "end": None,
                                                          "hosts": set()})
        start, end = datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"])
        g["tasks"] += 1
        g["task_seconds"] += _seconds(t)
        g["start"] = min(filter(None, (g["start"], start)))
        g["end"] = max(filter(None, (g["end"], end)))
        g["hosts"].add(t.get("hostname"))
    first = min((v["start"] for v in out.values()), default=None)
    return {k: {"tasks": v["tasks"], "task_seconds": round(v["task_seconds"], 1),
                "span_seconds": round((v["end"] - v["start"]).total_seconds(), 1), "hosts": sorted(v["hosts"]),
                "start_offset_seconds": round((v["start"] - first).total_seconds(), 1)}
            for k, v in sorted(out.items(), key=lambda kv: kv[1]["start"])}


def _dag_run(settings, n: int, workers: int, dag_id: str, conf: dict, out: Path) -> dict:
    """One DAG run on a fresh ``LocalCluster`` of ``workers`` Celery workers (concurrency 1 each): wall from
    trigger to end, per-stage figures from the task instances, peak memory per worker."""
    import uuid

    from pipelines.cluster import LocalCluster, free_port

    tag = uuid.uuid4().hex[:8]
    cluster = LocalCluster(settings, home=out / f"airflow_{dag_id.rsplit('_', 1)[-1]}_{workers}w",
                           broker_url="redis://127.0.0.1:6379/5", metadata_db=f"pae_bench_airflow_{n}_{tag}",
                           port=free_port(), workers=workers, queue=f"bench-{tag}")
    _fresh_database(_server(), cluster.metadata_db)
    try:
        with cluster, WorkerMemory(cluster.processes) as memory:
            t0 = time.perf_counter()
            run_id = cluster.trigger(dag_id, conf)
            state = cluster.wait(dag_id, run_id, timeout=4 * 3600)
            wall = time.perf_counter() - t0
            tis = cluster.task_instances(dag_id, run_id)
    finally:
        _drop_database(cluster.metadata_db)
    failed = [(t["task_id"], t.get("map_index"), t["state"]) for t in tis if t["state"] not in ("success", "skipped")]
    return {"dag": dag_id, "workers": workers, "state": state, "wall_seconds": round(wall, 1), "failed": failed,
            "stages": stages(tis), "task_seconds": round(sum(_seconds(t) for t in tis), 1),
            "peak_process_mib": {k: round(v) for k, v in memory.peak_process.items()},
            "peak_tree_mib": {k: round(v) for k, v in memory.peak_tree.items()},
            "load_average": os.getloadavg()[0]}


def _drop_database(name: str) -> None:
    import sqlalchemy as sa
    from core.db import get_engine

    admin = get_engine(url=_server()).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
    admin.dispose()


def _row_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa
    from core.db import get_engine

    engine = get_engine(url=url)
    with engine.connect() as conn:
        rows = {t: conn.execute(sa.text(f"select count(*) from analytics.{t}")).scalar_one() for t in WRITTEN_TABLES
                if conn.execute(sa.text("select to_regclass(:t)"), {"t": f"analytics.{t}"}).scalar()}
    engine.dispose()
    return rows


def _print_dag_run(r: dict) -> None:
    print(f"    {r['dag']} on {r['workers']} worker(s): {r['state']}, {r['wall_seconds']:.0f} s wall, "
          f"{r['task_seconds']:.0f} task-s; peak RSS per worker: largest process "
          f"{r['peak_process_mib']} MiB, process tree {r['peak_tree_mib']} MiB; load avg {r['load_average']:.1f}"
          + (f"; NOT OK: {r['failed']}" if r["failed"] else "")
          + (f"; modes {sorted(set(r['modes'].values()))}" if r.get("modes") else ""), flush=True)
    for name, g in r["stages"].items():
        print(f"      {name:<26} {g['tasks']:>3} task(s) {g['task_seconds']:8.1f} task-s  span {g['span_seconds']:8.1f} s"
              f"  on {', '.join(map(str, g['hosts']))}", flush=True)


def cluster_scale(n: int, days: int, worker_counts: list[int], shards: int) -> dict:
    """The split pipeline on a real Celery cluster at ``n`` workspaces: the prepared platform (generate, load,
    extract, features; ``bench/prepare.py``), one retrain DAG run of every kind on the most workers, then the
    nightly DAG (scoring with those versions) once per worker count, each on a fresh cluster."""
    from bench.prepare import END as PREPARED_END, prepared_platform, platform_dir

    base, url = prepared_platform(n, days)
    phases = json.loads((platform_dir(n) / "COMPLETE.json").read_text())["phases"]
    out = out_dir(f"scale_cluster_{n}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    import sqlalchemy as sa
    from core.db import get_engine

    engine = get_engine(url=url)
    with engine.begin() as conn:  # no models yet: this run trains the versions its nightly runs score with
        conn.execute(sa.text("truncate analytics.model_decisions, analytics.retrain_runs, analytics.ml_models"))
    engine.dispose()
    mlflow_url = _fresh_database(_server(), f"pae_bench_scale_mlflow_{n}")
    # the platform's staging and offline store (shared storage), outputs and MLflow state of this run's own
    settings = base.model_copy(update={"database_url": url, "data_dir": out / "pae", "shards": shards,
                                       "storage_uri": str(base.storage_root), "mlflow_tracking_uri": mlflow_url})
    from pipelines.registry import configure

    configure(settings).search_experiments()  # MLflow's tables, made once here (workers would race)
    d = PREPARED_END.isoformat()
    # the versions are trained through the day before the night they score (a version trained through the
    # night's own date is not used to score it: the nightly would train inline again); its features first
    trained = (PREPARED_END - timedelta(days=1)).isoformat()
    features = in_process(_step, "features_step", trained, settings)
    print(f"  {n:,} workspaces prepared: " + ", ".join(f"{k} {v['seconds']:.0f} s (peak {v['peak_rss_mib']:,} MiB)"
                                                     for k, v in phases.items())
          + f"; features of {trained} for the retrain {features['seconds']:.0f} s", flush=True)
    runs = []
    retrain = _dag_run(settings, n, max(worker_counts), "predictive_analytics_retrain",
                       {"run_date": trained, "reason": "manual", "kinds": "all"}, out)
    _print_dag_run(retrain)
    runs.append(retrain)
    for w in worker_counts:
        r = _dag_run(settings, n, w, "predictive_analytics_nightly", {"run_date": d}, out)
        with get_engine(url=url).connect() as conn:  # scored with the retrained versions, or trained inline
            r["modes"] = dict(conn.execute(sa.text(
                "select step, details->'details'->>'mode' from analytics.pipeline_runs where logical_date = :d"
                " and step like 'finalize_%' order by started_at"), {"d": PREPARED_END}).all())
        _print_dag_run(r)
        runs.append(r)
    _drop_database(f"pae_bench_scale_mlflow_{n}")
    return {"workspaces": n, "users": phases["generate"]["result"]["users"], "platform_phases": phases,
            "features_for_retrain_seconds": features["seconds"], "runs": runs, "rows": _row_counts(url)}


def print_cluster(results: list[dict]) -> None:
    """Per scale and worker count: nightly wall and stage spans; growth between scales; the serial and the
    shardable cost per workspace, and what 100,000 workspaces need for a one-hour night."""
    print("\n| workspaces | users | DAG | workers | wall s | task-s | largest process MiB | largest worker tree MiB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for res in results:
        for r in res["runs"]:
            print(f"| {res['workspaces']:,} | {res['users']:,} | {r['dag'].rsplit('_', 1)[-1]} | {r['workers']} | "
                  f"{r['wall_seconds']:.0f} | {r['task_seconds']:.0f} | {max(r['peak_process_mib'].values()):,} | "
                  f"{max(r['peak_tree_mib'].values()):,} |")
    nightly = {(res["workspaces"], r["workers"]): r for res in results for r in res["runs"]
               if r["dag"].endswith("nightly")}
    names = list(dict.fromkeys(s for r in nightly.values() for s in r["stages"]))  # in order of start
    keys = sorted(nightly)
    print("\nnightly stages, span in seconds (first start to last end; task-seconds in brackets)")
    print("| stage | " + " | ".join(f"{n:,} ws, {w}w" for n, w in keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for s in names:
        cells = []
        for k in keys:
            g = nightly[k]["stages"].get(s)
            cells.append(f"{g['span_seconds']:.1f} ({g['task_seconds']:.1f})" if g else "-")
        print(f"| {s} | " + " | ".join(cells) + " |")
    print("\nrows written: " + "; ".join(f"{res['workspaces']:,} ws: " + ", ".join(
        f"{t} {c:,}" for t, c in res["rows"].items()) for res in results))
    print("kinds' modes on the nightly runs: " + "; ".join(f"{n:,} ws, {w}w: {r.get('modes')}"
                                                           for (n, w), r in sorted(nightly.items())))
    one = sorted((n, r) for (n, w), r in nightly.items() if w == 1)
    if len(one) >= 2:
        (n0, r0), (n1, r1) = one[0], one[-1]
        print(f"\nnightly on one worker: {r0['wall_seconds']:.0f} s at {n0:,} ws, {r1['wall_seconds']:.0f} s at "
              f"{n1:,} ws: {r1['wall_seconds'] / r0['wall_seconds']:.2f}x for {n1 / n0:.1f}x workspaces")
        # mapped over more than one shard: spreads over workers (churn's and agent errors' one shard does not)
        sharded = [s for s, g in r1["stages"].items() if s.endswith(" shards") and g["tasks"] > 1]
        par = [sum(r["stages"].get(s, {}).get("task_seconds", 0) for s in sharded) for r in (r0, r1)]
        ser = [r["task_seconds"] - p for r, p in zip((r0, r1), par)]
        b_par, b_ser = (par[1] - par[0]) / (n1 - n0), (ser[1] - ser[0]) / (n1 - n0)
        a_par, a_ser = par[1] - b_par * n1, ser[1] - b_ser * n1
        big = 100_000
        par_big, ser_big = a_par + b_par * big, a_ser + b_ser * big
        print(f"task-seconds per workspace between {n0:,} and {n1:,}: shardable ({', '.join(sharded)}) {b_par:.3f}; "
              f"the rest, summed (extract, gates, aggregate refresh, feature merge, plans, one-shard kinds, finalizes, "
              f"publish, monitor: an upper bound on the serial part) {b_ser:.3f}")
        print(f"at {big:,} workspaces (linear): shardable {par_big:,.0f} task-s, the rest {ser_big:,.0f} s")
        if ser_big >= 3600:
            print(f"  one hour is not reachable by adding workers: the unsharded tasks alone take {ser_big:,.0f} s")
        else:
            need = int(-(-par_big // (3600 - ser_big)))
            print(f"  workers of this size for a one-hour night: ceil({par_big:,.0f} / (3600 - {ser_big:,.0f})) = "
                  f"{need} (with at least {need} shards per kind)")


def _stage_group(stage: str) -> str:
    return stage.split(" shard ")[0] + " shards" if " shard " in stage else stage


def _recorded_group(step: str) -> str:
    """A pipeline_runs step name as the stage it belongs to (predict_churn_3 -> churn shards)."""
    if step.startswith("predict_"):
        return step[len("predict_"):].rsplit("_", 1)[0] + " shards"
    if step.startswith("publish_"):  # publish_<kind>_<shard>
        return "publish shards"
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


# Rows per workspace of the nightly's prediction sets at 1,000 workspaces, 120 days (bench/data/printed/
# scale_cluster_1000.txt: 1,209,628 predictions and 40,725 churn scores): 30 days x 40 (metric, dimension) series.
PUBLISH_ROWS_PER_WORKSPACE = {"predictions": 1200, "churn_predictions": 41}


def _publish_frames(n: int, folder: Path, night: int) -> list[dict]:
    """Night ``night``'s prediction sets for ``n`` workspaces as the kinds hand them over (Parquet frames)."""
    import numpy as np
    import pandas as pd

    from core.contracts import RunStatus
    from pipelines.results import KindResult

    as_of = END + timedelta(days=night)
    rng = np.random.default_rng(SEED + night)
    ws = np.array([f"ws_{i:06d}" for i in range(n)])
    series, days = PUBLISH_ROWS_PER_WORKSPACE["predictions"] // 30, 30
    k = np.arange(series * days)
    dates = np.array([as_of + timedelta(days=int(d) + 1) for d in range(days)])
    value = rng.gamma(2.0, 50.0, n * len(k)).round(3)
    pred = pd.DataFrame({"workspace_id": np.repeat(ws, len(k)), "target_metric": "credits",
                         "dimension": np.tile(np.where(k // days == 0, "total", "feature_" + (k // days).astype(str)), n),
                         "prediction_date": np.tile(dates[k % days], n), "predicted_value": value,
                         "confidence_lower": value * 0.8, "confidence_upper": value * 1.2, "confidence_level": 0.8,
                         "model_version": str(night + 1)})
    users = PUBLISH_ROWS_PER_WORKSPACE["churn_predictions"]
    p = rng.random(n * users).round(6)
    churn = pd.DataFrame({"workspace_id": np.repeat(ws, users),
                          "user_id": [f"{w}_u{j}" for w in ws for j in range(users)], "churn_probability": p,
                          "risk_score": (p * 100).round(3), "risk_factors": '[{"feature": "recency_days"}]',
                          "recommended_actions": '[{"id": "reengage"}]', "days_until_churn": 30,
                          "model_version": str(night + 1)})
    folder.mkdir(parents=True, exist_ok=True)
    pred.to_parquet(folder / f"consumption_{night}.parquet")
    churn.to_parquet(folder / f"churn_{night}.parquet")
    return [KindResult(kind="consumption", status=RunStatus.SUCCESS, publish_to="predictions",
                       prediction_type="credit_consumption",
                       frame_path=str(folder / f"consumption_{night}.parquet")).model_dump(mode="json"),
            KindResult(kind="churn", status=RunStatus.SUCCESS, publish_to="churn_predictions",
                       frame_path=str(folder / f"churn_{night}.parquet")).model_dump(mode="json")]


def _publish_part(url: str, data_dir: str, shards: int, run_date: str, part: dict) -> dict:
    from core.settings import Settings
    from pipelines.nightly import publish_part_step

    settings = Settings(database_url=url, data_dir=Path(data_dir), shards=shards)
    return publish_part_step(run_date, part, settings).model_dump(mode="json")


def _publish_night(url: str, folder: Path, results: list[dict], night: int, shards: int, workers: int) -> dict:
    """One night's publish: the shard tasks on ``workers`` parallel processes, then the completing step."""
    from concurrent.futures import ThreadPoolExecutor

    from core.settings import Settings
    from pipelines.nightly import publish_parts_step, publish_step

    settings = Settings(database_url=url, data_dir=folder, shards=shards)
    run_date = (END + timedelta(days=night)).isoformat()
    parts = publish_parts_step(results, settings)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # each task a fresh process, as on a worker
        tasks = list(pool.map(lambda p: in_process(_publish_part, url, str(folder), shards, run_date, p), parts))
    t1 = time.perf_counter()
    done = publish_step(run_date, results, settings, parts=[t["result"] for t in tasks])
    wall = time.perf_counter() - t0
    rows = sum(p.rows for p in done)
    return {"night": night, "shards": shards, "workers": workers, "wall_s": round(wall, 1),
            "complete_s": round(wall - (t1 - t0), 1), "task_seconds": round(sum(t["seconds"] for t in tasks), 1),
            "largest_task_s": round(max(t["seconds"] for t in tasks), 1),
            "peak_rss_mib": round(max(t["peak_rss_mib"] for t in tasks)), "rows": rows,
            "changed": sum(p.changed for p in done), "rows_per_s": round(rows / wall),
            "load_average": round(os.getloadavg()[0], 1)}


def publish_scale(n: int, shards: int, workers: int) -> dict:
    import sqlalchemy as sa

    from core.db import get_engine, migrate

    url = _fresh_database(_server(), f"pae_bench_publish_{n}")
    migrate(get_engine(url=url))
    folder = out_dir(f"scale_publish_{n}")
    shutil.rmtree(folder, ignore_errors=True)
    nights = []
    try:
        for night, (s, w) in enumerate(((1, 1), (1, 1), (shards, workers), (shards, workers))):
            frames = night if night < 3 else 2  # the last pass re-runs night 2
            results = _publish_frames(n, folder, frames) if night < 3 else nights[-1]["results"]
            r = _publish_night(url, folder, results, frames, s, w)
            r["pass"] = ("first night", "next night", "night after", "re-run of that night")[night]
            r["results"] = results
            nights.append(r)
            print(f"  {n:,} workspaces, {r['pass']}: {r['rows']:,} rows ({r['changed']:,} changed) in {r['wall_s']} s "
                  f"({r['shards']} shard(s) on {r['workers']} process(es); completing {r['complete_s']} s); "
                  f"{r['task_seconds']} task-s, {r['rows_per_s']:,} rows/s, peak {r['peak_rss_mib']} MiB, "
                  f"load {r['load_average']}", flush=True)
        with get_engine(url=url).connect() as conn:
            size = conn.execute(sa.text("select pg_total_relation_size('analytics.predictions')")).scalar()
    finally:
        _drop_database(f"pae_bench_publish_{n}")
        shutil.rmtree(folder, ignore_errors=True)
    return {"workspaces": n, "nights": [{k: v for k, v in r.items() if k != "results"} for r in nights],
            "predictions_mib": round(size / 2**20)}


def print_publish(results: list[dict]) -> None:
    print("\n| workspaces | pass | shards x processes | rows | changed | wall s | task-s | largest task s |"
          " rows/s | peak MiB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for x in r["nights"]:
            print(f"| {r['workspaces']:,} | {x['pass']} | {x['shards']} x {x['workers']} | {x['rows']:,} | "
                  f"{x['changed']:,} | {x['wall_s']} | {x['task_seconds']} | {x['largest_task_s']} | "
                  f"{x['rows_per_s']:,} | {x['peak_rss_mib']} |")
    one = [next(x for x in r["nights"] if x["pass"] == "next night") for r in results]
    many = [next(x for x in r["nights"] if x["pass"] == "night after") for r in results]
    for r, a, b in zip(results, one, many):
        print(f"{r['workspaces']:,} workspaces: a changed night in 1 shard {a['wall_s']} s, in {b['shards']} shards on "
              f"{b['workers']} processes {b['wall_s']} s ({a['wall_s'] / b['wall_s']:.2f}x); predictions table "
              f"{r['predictions_mib']:,} MiB")
    if len(results) > 1:
        ratio = results[-1]["workspaces"] / results[0]["workspaces"]
        print(f"growth for {ratio:.1f}x the workspaces: 1 shard {one[-1]['wall_s'] / one[0]['wall_s']:.2f}x, "
              f"{many[0]['shards']} shards {many[-1]['wall_s'] / many[0]['wall_s']:.2f}x (linear: {ratio:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("load", "nightly", "cluster", "features", "publish"), required=True)
    ap.add_argument("--workspaces", type=int, nargs="+", required=True, help="scales, smallest first")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--kinds", default=None, help="prediction kinds of the nightly run (default: all)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="cluster: Celery worker counts; publish: parallel task processes (the first count)")
    ap.add_argument("--shards", type=int, nargs="+", default=[4],
                    help="cluster: workspace shards per kind (PAE_SHARDS); features: each count to compare, e.g. 1 8")
    ap.add_argument("--load-batch-rows", type=int, nargs="+", default=[0, 2_000_000],
                    help="load: PAE_LOAD_BATCH_ROWS values to compare (0: each file its own call and insert)")
    ap.add_argument("--report", action="store_true", help="cluster: print the tables of the last run's JSON again")
    args = ap.parse_args()
    if sorted(args.workspaces) != args.workspaces or min(args.workspaces) < 1:
        ap.error("--workspaces: positive scales, smallest first (e.g. 50 150)")
    days = "" if args.part == "publish" else f"{args.days} days, "  # publish sets do not depend on history
    print(f"scale benchmark ({args.part}): {days}workspaces {args.workspaces}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.part == "load":
        res = [load_scale(n, args.days, b) for n in args.workspaces for b in args.load_batch_rows]
        print("\n| workspaces | batch rows | rows | files (calls) | load s | s per M rows | first third | last third |"
              " partitions |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in res:
            print(f"| {r['workspaces']:,} | {r['batch_rows']:,} | {r['rows']:,} | {r['files']} ({r['calls']}) | "
                  f"{r['seconds']:.1f} | {r['s_per_million']:.1f} | {r['first_third_s_per_million']:.1f} | "
                  f"{r['last_third_s_per_million']:.1f} | {r['partitions']} |")
        for b in args.load_batch_rows:
            same = [r for r in res if r["batch_rows"] == b]
            print(f"batch {b:,}: s per million rows, largest / smallest scale: "
                  f"{same[-1]['s_per_million'] / same[0]['s_per_million']:.2f} (1.00 = linear) for "
                  f"{same[-1]['rows'] / same[0]['rows']:.1f}x the rows")
        print("\n| workspaces | batch rows | WAL MiB per M rows | first third | last third | full-page images per M rows"
              " | checkpoints |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in res:
            print(f"| {r['workspaces']:,} | {r['batch_rows']:,} | {r['wal']['wal_mib_per_million']:,.0f} | "
                  f"{r['wal_first_third']['wal_mib_per_million']:,.0f} | {r['wal_last_third']['wal_mib_per_million']:,.0f} | "
                  f"{r['fpi_per_million']:,.0f} | {r['wal']['checkpoints']} |")
    elif args.part == "cluster" and args.report:
        print_cluster(json.loads((out_dir("scale") / "cluster.json").read_text()))
        return
    elif args.part == "cluster":
        res = []
        for n in args.workspaces:
            res.append(cluster_scale(n, args.days, args.workers, args.shards[0]))
            (out_dir("scale") / "cluster.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        print_cluster(res)
    elif args.part == "features":
        res = [features_scale(n, args.days, args.shards) for n in args.workspaces]
        print_features(res)
    elif args.part == "publish":
        res = [publish_scale(n, args.shards[0], args.workers[0]) for n in args.workspaces]
        print_publish(res)
    else:
        res = [nightly_scale(n, args.days, args.kinds) for n in args.workspaces]
        print_nightly(res)
    (out_dir("scale") / f"{args.part}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
