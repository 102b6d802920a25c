"""Latency of ``POST /api/analytics/predictions/what-if`` at the API (uvicorn), on a seeded database.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/what_if.py

A throwaway database on DATABASE_URL's server is migrated and filled the way ``bench/api_load.py`` fills it
(``--workspaces`` workspaces, 50 users with churn scores each, daily history), plus what a what-if reads: 90 days
of credit forecasts (total, 5 features, running totals), growth scenarios worst/likely/best of DAU/WAU/MAU for
90 days with milestones, 60 days of realised users, the users' ``user_behaviour`` features and 28 days of agent
events (4 agents a workspace). ``uvicorn`` runs the app as a subprocess with one worker; one client sends
``--requests`` requests, each for a random workspace with a random mix of adjustments (none, usage, growth,
retention, price, agents, or all of them, 90 days, credits + DAU/WAU/MAU), and the script prints p50/p95/p99
(target: p95 <= 200 ms), then the same with ``--concurrency`` clients. The database is dropped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_load import (
    AS_OF,
    FEATURES,
    USERS_PER_WORKSPACE,
    _copy,
    _wait_ready,
    seed_rows,
)
from core.db import get_engine, migrate
from core.ids import entity_uuid
from services.keys import create_api_key

HORIZON = 90
PATH = "/api/analytics/predictions/what-if"


def seed_what_if(engine, workspaces: list[str], seed: int = 0) -> dict[str, int]:
    """The rows beyond ``api_load.seed_rows`` that a what-if reads (see the module doc)."""
    rng = np.random.default_rng(seed)
    ws_ids = {w: str(entity_uuid("workspace", w)) for w in workspaces}
    with engine.begin() as conn:  # api_load seeds 30 forecast days; a what-if looks 90 ahead
        conn.execute(sa.text("delete from analytics.predictions"))
    counts = {}

    def predictions():
        for w in workspaces:
            level, shares = float(rng.lognormal(4, 1.5)), rng.dirichlet(np.ones(len(FEATURES)))
            running = 0.0
            for h in range(1, HORIZON + 1):
                day, total = AS_OF + timedelta(days=h), level * (1 + 0.3 * np.sin(h))
                spread = 0.15 * np.sqrt(h)
                running += total
                for dim, share in (("total", 1.0), *zip(FEATURES, shares)):
                    v = total * share
                    yield (ws_ids[w], "credit_consumption", "credits", dim, "likely", day, round(v, 6),
                           round(max(v * (1 - spread), 0), 6), round(v * (1 + spread), 6), "ets-v1", AS_OF)
                yield (ws_ids[w], "credit_consumption", "credits_cumulative", "total", "likely", day, round(running, 6),
                       round(0.9 * running, 6), round(1.1 * running, 6), "ets-v1", AS_OF)
            for m, base in (("dau", 10), ("wau", 25), ("mau", 40)):
                for h in range(1, HORIZON + 1):
                    x = base * (1 + 0.003 * h)
                    for s, f in (("worst", 0.9), ("likely", 1.0), ("best", 1.1)):
                        yield (ws_ids[w], "growth", m, "total", s, AS_OF + timedelta(days=h), round(f * x, 3),
                               round(0.8 * x, 3), round(1.2 * x, 3), "growth-v1", AS_OF)

    counts["predictions"] = _copy(engine, "predictions", [
        "workspace_id", "prediction_type", "target_metric", "dimension", "scenario", "prediction_date",
        "predicted_value", "confidence_lower", "confidence_upper", "model_version", "as_of_date"], predictions())
    counts["growth_milestones"] = _copy(engine, "growth_milestones", [
        "workspace_id", "as_of_date", "target_metric", "kind", "threshold", "current_value", "probability",
        "date_p10", "date_p50", "date_p90", "horizon_days"],
        ((ws_ids[w], AS_OF, "mau", "round", 50, 40, 0.6, AS_OF + timedelta(days=40), AS_OF + timedelta(days=70),
          AS_OF + timedelta(days=89), HORIZON) for w in workspaces))
    counts["workspace_growth_metrics"] = _copy(engine, "workspace_growth_metrics", [
        "workspace_id", "metric_date", "dau", "wau", "mau", "new_users", "returning_users", "reactivated_users",
        "lost_users", "users_ever"],
        ((ws_ids[w], AS_OF - timedelta(days=d), 10, 25, 40, 2, 8, 0, 1, 200) for w in workspaces for d in range(60)))
    counts["ml_features"] = _copy(engine, "ml_features", [
        "entity_type", "entity_id", "feature_set", "features", "computed_at", "version", "as_of_date"],
        (("user", entity_uuid("user", f"{w}-u{u:03d}"), "user_behaviour",
          json.dumps({"credits_28": round(float(rng.gamma(2, 50)), 3)}), f"{AS_OF} 00:00:00", 2, AS_OF)
         for w in workspaces for u in range(USERS_PER_WORKSPACE)))

    def events():
        for w in workspaces:
            for a in range(4):
                for d in range(28):
                    t = datetime.combine(AS_OF - timedelta(days=d), datetime.min.time(), tzinfo=UTC)
                    for k, f in enumerate(FEATURES[:3]):  # mostly its kind's feature, FEATURES[a % 3]
                        yield (uuid.uuid4(), (t + timedelta(hours=9)).isoformat(), w, f"{w}-a{a}",
                               f, round(float(rng.gamma(2, 5)) * (10 if k == a % 3 else 1), 4), "ok", 1)

    counts["usage_events"] = _copy(engine, "usage_events", [
        "event_key", "event_time", "workspace_id", "agent_id", "feature", "credits", "status", "count"], events())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("analyze"))
    return counts


def scenario(rng: random.Random) -> list[dict]:
    """A random mix of adjustments, as a person would try them."""
    options = [
        {"type": "usage_change", "percent": rng.choice([-20, 10, 50]), "start_date": str(AS_OF + timedelta(days=15))},
        {"type": "user_growth", "percent_per_week": rng.choice([-10, 20, 50])},
        {"type": "churn_retention", "share": rng.choice([0.25, 0.5, 1.0])},
        {"type": "price", "dimension": rng.choice(FEATURES), "multiplier": rng.choice([0.8, 1.2, 1.5])},
        {"type": "agents", "kind": rng.choice(FEATURES[:3]), "count": rng.choice([-1, 2, 5])},
    ]
    pick = rng.random()
    if pick < 0.15:
        return []
    if pick < 0.3:
        return options
    return rng.sample(options, rng.randint(1, 3))


async def drive(base_url: str, workspaces, keys, n: int, concurrency: int, seed: int) -> tuple[list[float], dict]:
    latencies, errors = [], {}
    per_client = n // concurrency

    async def client_loop(i: int) -> None:
        rng = random.Random(seed + i)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            for _ in range(per_client):
                ws = rng.choice(workspaces)
                body = {"workspace_id": ws, "base_scenario": "likely", "adjustments": scenario(rng),
                        "metrics": ["credits", "dau", "wau", "mau"], "horizon_days": HORIZON}
                t0 = time.perf_counter()
                r = await client.post(PATH, json=body, headers={"X-API-Key": keys[ws]})
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1

    await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
    return latencies, errors


def report(label: str, latencies: list[float], errors: dict, elapsed: float) -> float:
    p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    print(f"{label:<28} {len(latencies):>6} ok {len(latencies) / elapsed:>7.1f} req/s  p50 {p50:7.1f} ms  "
          f"p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  max {max(latencies) * 1000:7.1f} ms  errors {errors or 0}",
          flush=True)
    return p95


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workspaces", type=int, default=200)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--port", type=int, default=18766)
    args = p.parse_args(argv)
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        p.error("set DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    db_name = f"pae_bench_whatif_{uuid.uuid4().hex[:8]}"
    admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{db_name}"'))
    db_url = sa.engine.make_url(server_url).set(database=db_name).render_as_string(hide_password=False)
    engine, proc = get_engine(url=db_url), None
    try:
        migrate(engine)
        t0 = time.perf_counter()
        counts = seed_rows(engine, args.workspaces, history_days=60)
        workspaces = [f"ws-{i:05d}" for i in range(args.workspaces)]
        counts.update(seed_what_if(engine, workspaces))
        print(f"seeded {db_name} in {time.perf_counter() - t0:.0f}s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        pepper = secrets.token_urlsafe(16)
        keys = {w: create_api_key(engine, [w], "bench", pepper=pepper) for w in workspaces}
        base_url = f"http://127.0.0.1:{args.port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.api.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(args.port), "--no-access-log", "--log-level", "warning"],
            env={**os.environ, "DATABASE_URL": db_url, "PAE_API_KEY_PEPPER": pepper},
            cwd=Path(__file__).resolve().parent.parent)
        _wait_ready(base_url, proc)
        asyncio.run(drive(base_url, workspaces, keys, 30, 1, seed=99))  # warm-up: pools, imports
        print(f"\nPOST {PATH}: {args.workspaces} workspaces, 90 days, credits (total + {len(FEATURES)} features) and "
              f"DAU/WAU/MAU, random adjustments; {os.cpu_count()} cores shared by uvicorn (1 worker), PostgreSQL "
              "and this client.")
        results = {}
        for label, conc in (("1 client", 1), (f"{args.concurrency} concurrent clients", args.concurrency)):
            t0 = time.perf_counter()
            lat, err = asyncio.run(drive(base_url, workspaces, keys, args.requests, conc, seed=conc))
            results[label] = report(label, lat, err, time.perf_counter() - t0)
        p95 = results["1 client"]
        print(f"target p95 <= 200 ms (one client): {'met' if p95 <= 200 else 'NOT met'} ({p95:.1f} ms)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{db_name}" with (force)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
