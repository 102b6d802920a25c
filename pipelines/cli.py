"""The ``pae`` command line: every pipeline step runs here without Airflow."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date
from pathlib import Path

from core.settings import get_settings, limit_threads

DEMO_END_DATE = date(2026, 11, 24)


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {s!r}; use YYYY-MM-DD") from None


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
                        future_tolerance_seconds=settings.future_tolerance_seconds)
    except (EventSchemaError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(s.as_dict(), indent=2))
    if s.rows_rejected:
        print(f"{s.rows_rejected} row(s) rejected and not loaded; see {s.reject_report}", file=sys.stderr)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from pipelines.ingest.extract import extract

    settings = get_settings()
    s = extract(_engine(), args.date, settings.staging_dir, settings.late_window_days)
    print(json.dumps(s.as_dict(), indent=2))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from pipelines.features.store import build_feature_store

    settings = get_settings()
    s = build_feature_store(_engine(), settings.staging_dir, settings.offline_store_dir, args.date)
    print(json.dumps(s.as_dict(), indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The nightly steps for one date without Airflow (backfills on the first run)."""
    from pipelines.nightly import run_nightly

    published = run_nightly(args.date, get_settings())
    print(json.dumps(published, indent=2, default=str))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Main job: database, migrations, demo data, load, extract and features, then a summary."""
    from pipelines.demo import run_demo

    return run_demo(get_settings(), args.workspaces, args.days, args.seed, args.date, airflow=not args.no_airflow)


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
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="main job on demo data (see README)")
    d.add_argument("--workspaces", type=int, default=60)
    d.add_argument("--days", type=int, default=730)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--date", type=_date, default=DEMO_END_DATE)
    d.add_argument("--no-airflow", action="store_true", help="run the steps directly (pae run) instead of the DAG")
    d.set_defaults(func=cmd_demo)

    from pipelines.forecast_file import add_forecast_parser
    from services.api.main import add_api_parsers

    add_forecast_parser(sub)
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
