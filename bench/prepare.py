"""A prepared synthetic platform shared by benchmarks: generated, loaded, extracted and featurised ONCE.

``prepared_platform(n)`` builds, under ``bench/out/platform_<n>/``:

* ``gen/``: the generator's output (``events/``, ``ground_truth/``, ``manifest.json``);
* ``pae/``: the pipeline's ``data_dir`` (``staging/``, ``offline_store/``, ``rejects/``; MLflow state of
  whoever uses it);
* ``COMPLETE.json``: the marker written last, with the arguments and the time each phase took;

and a persistent database ``pae_bench_platform_<n>`` on DATABASE_URL's server (migrations applied, events
loaded, daily metrics and online features written). A later call with the same arguments finds the marker
and only re-applies migrations (idempotent); other arguments, or no marker, rebuild everything. Calls are
serialised with a lock file, so two benchmarks may ask for the same platform at once.

    .venv/bin/python bench/prepare.py --workspaces 100      # build (or check) one platform
"""
from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.common import out_dir, timed_phase  # noqa: E402
from core.settings import Settings  # noqa: E402

END = date(2026, 11, 24)
MARKER = "COMPLETE.json"


def platform_dir(n_workspaces: int) -> Path:
    return out_dir(f"platform_{n_workspaces}")


def ground_truth_dir(n_workspaces: int) -> Path:
    """``ground_truth/`` of the prepared platform (generator output, workspace-local dates)."""
    return platform_dir(n_workspaces) / "gen" / "ground_truth"


def database_name(n_workspaces: int) -> str:
    return f"pae_bench_platform_{n_workspaces}"


@contextmanager
def _lock(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _server_url() -> str:
    from core.db import database_url

    return database_url(Settings())


def _recreate_database(server: str, name: str) -> str:
    from core.db import get_engine

    admin = get_engine(url=server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        conn.execute(sa.text(f'create database "{name}"'))
    admin.dispose()
    return _db_url(server, name)


def _db_url(server: str, name: str) -> str:
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


def _database_exists(server: str, name: str) -> bool:
    from core.db import get_engine

    admin = get_engine(url=server)
    try:
        with admin.connect() as conn:
            return conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": name}).first() is not None
    finally:
        admin.dispose()


# Phases, each run in a forked child (bounded memory in the caller, wall time and peak RSS measured).
def _generate(n: int, days: int, seed: int, gen: Path):
    from pipelines.simulator.generate import generate_platform

    s = generate_platform(n, days, seed=seed, out_dir=gen, end_date=END)
    return {"event_rows": s.n_event_rows, "users": s.n_users, "agents": s.n_agents}


def _load(url: str, gen: Path, settings: Settings):
    from core.db import get_engine
    from pipelines.ingest.load import load_events

    s = load_events(get_engine(url=url), gen / "events", settings.rejects_dir)
    return {"inserted": s.rows_inserted, "rejected": s.rows_rejected}


def _extract(url: str, settings: Settings):
    from core.db import get_engine
    from pipelines.ingest.extract import extract

    return extract(get_engine(url=url), END, settings.staging_dir, settings.late_window_days).rows


def _features(url: str, settings: Settings):
    from core.db import get_engine
    from pipelines.features.store import build_feature_store

    return build_feature_store(get_engine(url=url), settings.staging_dir, settings.offline_store_dir, END,
                               n_shards=settings.shards).rows


def prepared_platform(n_workspaces: int, days: int = 730, seed: int = 7) -> tuple[Settings, str]:
    """The platform of ``n_workspaces`` (``days`` ending 2026-11-24, ``seed``), built once and then re-used.

    Returns:
        ``(Settings(database_url=url, data_dir=bench/out/platform_<n>/pae), url)``. The generator's
        ground truth is under ``bench/out/platform_<n>/gen/ground_truth`` (see :func:`ground_truth_dir`).
    """
    from core.db import get_engine, migrate

    root = platform_dir(n_workspaces)
    gen, data_dir = root / "gen", root / "pae"
    server = _server_url()
    name = database_name(n_workspaces)
    url = _db_url(server, name)
    want = {"n_workspaces": n_workspaces, "days": days, "seed": seed, "end_date": END.isoformat(), "database": name}
    with _lock(root.parent / f"platform_{n_workspaces}.lock"):
        marker = root / MARKER
        done = json.loads(marker.read_text()) if marker.exists() else None
        if done and {k: done.get(k) for k in want} == want and _database_exists(server, name):
            engine = get_engine(url=url)
            migrate(engine)
            engine.dispose()
            return Settings(database_url=url, data_dir=data_dir), url

        print(f"preparing platform of {n_workspaces} workspaces ({days} days, seed {seed}) in {root}", flush=True)
        marker.unlink(missing_ok=True)
        for sub in (gen, data_dir):
            shutil.rmtree(sub, ignore_errors=True)
        gen.mkdir(parents=True)
        data_dir.mkdir(parents=True)
        url = _recreate_database(server, name)
        engine = get_engine(url=url)
        migrate(engine)
        engine.dispose()
        settings = Settings(database_url=url, data_dir=data_dir)
        phases = {}
        for label, fn, args in (("generate", _generate, (n_workspaces, days, seed, gen)),
                                ("load", _load, (url, gen, settings)),
                                ("extract", _extract, (url, settings)),
                                ("features", _features, (url, settings))):
            wall, rss, result = timed_phase(fn, *args)
            phases[label] = {"seconds": round(wall, 1), "peak_rss_mib": round(rss), "result": result}
            print(f"  {label:<9} {wall:7.1f} s  peak {rss:6.0f} MiB  {result}", flush=True)
        marker.write_text(json.dumps({**want, "phases": phases, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")},
                                     indent=2, default=str) + "\n")
        return settings, url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=100)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    settings, url = prepared_platform(args.workspaces, args.days, args.seed)
    print(f"ready in {time.perf_counter() - t0:.1f} s: data_dir={settings.data_dir} database={url}")


if __name__ == "__main__":
    main()
