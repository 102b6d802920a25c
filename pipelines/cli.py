"""The ``pae`` command line: every pipeline step runs here without Airflow."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

from core.settings import Settings, get_settings, limit_threads
from pipelines.kinds import kind_names

DEMO_END_DATE = date(2026, 11, 24)


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {s!r}; use YYYY-MM-DD") from None


def _kinds(s: str) -> list[str]:
    from pipelines.kinds import select_kinds

    try:
        return select_kinds(s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _engine():
    from core.db import get_engine

    return get_engine(get_settings())


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.db import migrate

    applied = migrate(_engine())
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'schema is current'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.simulator.generate import generate_platform

    out = args.out or get_settings().data_dir / "demo"
    s = generate_platform(args.workspaces, args.days, args.seed, Path(out), end_date=args.end_date)
    print(f"generated {s.n_event_rows:,} event rows for {s.n_workspaces} workspaces, {s.n_users:,} users, "
          f"{s.n_agents} agents, {s.start_date}..{s.end_date} into {s.out_dir}/events "
          f"(ground truth in {s.out_dir}/ground_truth)")
    return 0


def cmd_load_events(args: argparse.Namespace) -> int:
    from core.db import migrate
    from pipelines.ingest.load import EventSchemaError, load_events

    settings = get_settings()
    engine = _engine()
    migrate(engine)
    try:
        s = load_events(engine, Path(args.file), settings.rejects_dir,
                        future_tolerance_seconds=settings.future_tolerance_seconds,
                        earliest_event_date=settings.earliest_event_date)
    except (EventSchemaError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(s.as_dict(), indent=2))
    if s.rows_rejected:
        print(f"{s.rows_rejected} row(s) rejected and not loaded; see {s.reject_report}", file=sys.stderr)
    for failed in s.files_failed:
        print(f"error: {failed['file']}: {failed['reason']} (file not loaded)", file=sys.stderr)
    if s.files_failed:
        print(f"{len(s.files_failed)} of {s.files_loaded + len(s.files_failed)} file(s) could not be read; "
              "the others were loaded", file=sys.stderr)
        return 1
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from pipelines.ingest.extract import extract

    settings = get_settings()
    s = extract(_engine(), args.date, settings.staging_dir, settings.late_window_days, settings.backfill_days)
    print(json.dumps(s.as_dict(), indent=2))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from pipelines.features.store import build_feature_store

    settings = get_settings()
    s = build_feature_store(_engine(), settings.staging_dir, settings.offline_store_dir, args.date,
                            holiday_country=settings.holiday_country, n_shards=settings.shards)
    print(json.dumps(s.as_dict(), indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The nightly steps for one date without Airflow (backfills on the first run)."""
    from pipelines.nightly import run_nightly

    published = run_nightly(args.date, get_settings(), kinds=args.kinds)
    print(json.dumps([p.model_dump(mode="json") for p in published], indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job: database, migrations, demo data, load, extract and features, then a summary."""
    from pipelines.demo import run_demo

    return run_demo(get_settings(), args.workspaces, args.days, args.seed, args.date, airflow=not args.no_airflow)


def cmd_worker(args: argparse.Namespace) -> int:
    """On-demand prediction jobs from the queue (``pipelines/jobs/``); one JSON line per job."""
    from core.db import get_engine, migrate
    from pipelines.jobs.runner import work

    settings = get_settings()
    engine = get_engine(settings)
    migrate(engine)  # the jobs table (sql/015) exists before the first claim
    for outcome in work(settings, engine, once=args.once, owner=args.worker_id):
        print(json.dumps(outcome, default=str), flush=True)
    return 0


# ``serve`` and ``api-key``: the CLI is an entry point, so it may import the API (nothing imports the CLI)
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from services.api.main import create_app

    settings = get_settings()
    workers = args.workers or settings.api_workers
    if workers < 1:
        print(f"error: --workers must be at least 1, got {workers}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)  # checks the settings (pepper) and, embedded, starts the database here
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, workers=1)
        return 0
    # Each worker process builds its own app from the environment; the embedded database stays this process's.
    import os

    from services.api.deps import reader_url

    app.state.engine.dispose()
    app.state.scenario_engine.dispose()
    os.environ.setdefault("PAE_API_DATABASE_URL", reader_url(settings))
    uvicorn.run("services.api.main:create_app", factory=True, host=args.host, port=args.port, workers=workers)
    return 0


def _admin_engine(settings: Settings):
    """The ``DATABASE_URL`` engine (the schema owner may write ``analytics.api_keys``), schema migrated."""
    from core.db import get_engine, migrate

    engine = get_engine(settings)
    migrate(engine)
    return engine


def cmd_api_key_create(args: argparse.Namespace) -> int:
    from services.keys import create_api_key
    from services.predictive_analytics import UnknownWorkspaceError

    settings = get_settings()
    try:
        key = create_api_key(_admin_engine(settings), args.workspace, args.name,
                             pepper=settings.api_key_pepper.get_secret_value())
    except (UnknownWorkspaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("API key created; it is shown only this once:", file=sys.stderr)
    print(key)
    return 0


def cmd_api_key_list(args: argparse.Namespace) -> int:
    from services.keys import list_api_keys

    for k in list_api_keys(_admin_engine(get_settings())):
        state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "active"
        print(f"{k['id']}  …{k['key_hint']}  {state:<24} {k['name']!r}  workspaces: {', '.join(k['workspace_ids'])}")
    return 0


def cmd_api_key_revoke(args: argparse.Namespace) -> int:
    from services.keys import revoke_api_key

    try:
        revoked = revoke_api_key(_admin_engine(get_settings()), args.key_id)
    except ValueError:
        print(f"error: {args.key_id!r} is not a key id (a UUID from `pae api-key list`)", file=sys.stderr)
        return 2
    if not revoked:
        print(f"error: no active key has id {args.key_id}", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0


def add_api_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``serve`` and ``api-key create|list|revoke`` on the main CLI's subparsers.

    Args:
        subparsers: The ``add_subparsers()`` result of the ``pae`` parser; each command sets ``func``.
    """
    serve = subparsers.add_parser("serve", help="serve the read-only HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="uvicorn worker processes (default: PAE_API_WORKERS, i.e. min(2, cores))")
    serve.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("api-key", help="manage API keys").add_subparsers(dest="api_key_command",
                                                                                   required=True)
    create = keys.add_parser("create", help="create a key for one or more workspaces; prints it once")
    create.add_argument("--workspace", action="append", required=True,
                        help="workspace UUID or external id; repeat for several")
    create.add_argument("--name", default="api key", help="who or what the key is for")
    create.set_defaults(func=cmd_api_key_create)
    keys.add_parser("list", help="list keys (hints only, never the keys)").set_defaults(func=cmd_api_key_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_api_key_revoke)


def cmd_cluster(args: argparse.Namespace) -> int:
    from pipelines.cluster import run_cluster

    return run_cluster(get_settings(), port=args.port, workers=args.workers, queue=args.queue,
                       worker_data_dirs=args.worker_data_dirs, broker_url=args.broker_url)


def cmd_peaks(args: argparse.Namespace) -> int:
    from pipelines.peak_usage.peaks_file import cmd_peaks as run

    return run(args)


def cmd_capacity(args: argparse.Namespace) -> int:
    from pipelines.peak_usage.capacity import CapacityError, clear_capacity, list_capacity, set_capacity

    engine = _admin_engine(get_settings())
    try:
        if args.capacity_command == "set":
            limits = {m: v for m, v in (("calls", args.calls), ("credits", args.credits)) if v is not None}
            print(json.dumps(set_capacity(engine, args.workspace, limits, args.time_zone, args.note)))
        elif args.capacity_command == "list":
            for row in list_capacity(engine):
                print(json.dumps(row, default=str))
        else:
            print(f"removed {clear_capacity(engine, args.workspace, args.metric, args.time_zone)} row(s)")
    except CapacityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_peak_parsers(sub: argparse._SubParsersAction) -> None:
    """``pae peaks`` (any hourly file) and ``pae capacity`` (limits for capacity alerts, declared time zones)."""
    pk = sub.add_parser("peaks", help="daily peak hours, peak values and capacity for any hourly file")
    pk.add_argument("--input", required=True, help="CSV or Parquet: unique_id, ds (the hour, the series' clock), y")
    pk.add_argument("--horizon-days", type=int, default=7, help="days after each series' last day (1-28)")
    pk.add_argument("--level", type=int, default=95, help="interval level in percent (50-99)")
    pk.add_argument("--output", required=True, help="CSV or Parquet: unique_id, date, peak_hour, peak_value, "
                                                     "peak_lower, peak_upper, capacity")
    pk.set_defaults(func=cmd_peaks)
    cap = sub.add_parser("capacity", help="capacity limits for capacity alerts, and declared time zones")
    cs = cap.add_subparsers(dest="capacity_command", required=True)
    s = cs.add_parser("set", help="set a workspace's capacity limit(s) per hour and/or its time zone")
    s.add_argument("--workspace", required=True, help="UUID or source id")
    s.add_argument("--calls", type=float, default=None, help="calls per hour the workspace's capacity handles")
    s.add_argument("--credits", type=float, default=None, help="credits per hour the workspace's capacity handles")
    s.add_argument("--time-zone", default=None, help="IANA zone (e.g. Europe/Paris); wins over the inferred one")
    s.add_argument("--note", default=None)
    cs.add_parser("list", help="the limits and declared time zones")
    c = cs.add_parser("clear", help="remove a workspace's limits (and, with --time-zone, its declared zone)")
    c.add_argument("--workspace", required=True)
    c.add_argument("--metric", choices=["calls", "credits"], default=None)
    c.add_argument("--time-zone", action="store_true")
    cap.set_defaults(func=cmd_capacity)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pae", description="Predictive Analytics Engine")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help="apply missing migrations (idempotent)").set_defaults(func=cmd_migrate)

    g = sub.add_parser("generate", help="generate a synthetic platform (events + ground truth)")
    g.add_argument("--workspaces", type=int, required=True)
    g.add_argument("--days", type=int, required=True)
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--end-date", type=_date, default=DEMO_END_DATE)
    g.add_argument("--out", type=Path, default=None, help="output folder (default: <data_dir>/demo)")
    g.set_defaults(func=cmd_generate)

    le = sub.add_parser("load-events", help="validate and load a CSV/Parquet file (or folder) of usage events")
    le.add_argument("file")
    le.set_defaults(func=cmd_load_events)

    for name, func, text in (("extract", cmd_extract, "stage source events up to DATE"),
                             ("features", cmd_features, "build the feature store as of DATE")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--date", type=_date, required=True)
        sp.set_defaults(func=func)

    r = sub.add_parser("run", help="run the nightly pipeline for DATE without Airflow")
    r.add_argument("--date", type=_date, required=True)
    r.add_argument("--kinds", type=_kinds, default=None,
                   help=f"comma-separated prediction kinds to run (default: all of {','.join(kind_names())})")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="main job on demo data (see README)")
    d.add_argument("--workspaces", type=int, default=60)
    d.add_argument("--days", type=int, default=730)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--date", type=_date, default=DEMO_END_DATE)
    d.add_argument("--no-airflow", action="store_true", help="run the steps directly (pae run) instead of the DAG")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("cluster", help="start Airflow with the CeleryExecutor on loopback (Ctrl-C stops it)")
    c.add_argument("--port", type=int, default=8080)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--queue", default="default",
                   help="Celery queue of this cluster's tasks (another cluster on the same Redis needs another one)")
    c.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    c.add_argument("--worker-data-dirs", action="store_true",
                   help="each worker its own data_dir under PAE_DATA_DIR, as on separate machines (needs PAE_STORAGE_URI)")
    c.set_defaults(func=cmd_cluster)

    w = sub.add_parser("worker", help="run on-demand prediction jobs from the queue (POST .../predictions/generate)")
    w.add_argument("--once", action="store_true", help="process the queued jobs, then exit")
    w.add_argument("--worker-id", default=None, help="lease owner name (default: host:pid:random)")
    w.set_defaults(func=cmd_worker)

    from pipelines.forecast_file import add_forecast_parser

    add_forecast_parser(sub)
    add_peak_parsers(sub)
    from pipelines.growth.goal_cli import add_goal_parsers

    add_goal_parsers(sub)
    from pipelines.agent_errors.threshold_cli import add_agent_threshold_parsers

    add_agent_threshold_parsers(sub)
    from pipelines.retrain import add_retrain_parser

    add_retrain_parser(sub)
    add_api_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_threads(get_settings().threads)
    started = time.perf_counter()
    code = args.func(args)
    if args.verbose:
        print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
