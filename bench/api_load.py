"""Load test of the read-only API: throughput and latency percentiles per endpoint under concurrent clients.

    python bench/api_load.py --seed-rows            # throwaway DB at the 1,000-workspace scale (default)
    python bench/api_load.py                        # the DB in DATABASE_URL as it is (needs predictions)

With ``--seed-rows`` a throwaway database is created on DATABASE_URL's server, migrated and filled by COPY with
realistic rows for ``--workspaces`` workspaces: 30 forecast days of the total and of 5 features (the features
sum to the total, intervals widen with the horizon), ``--history-days`` of daily history per dimension, 50
users with churn scores, risk factors and actions per workspace. It is dropped at the end unless ``--keep-db``.

One API key per workspace is created (hashed with a pepper made for this run), ``uvicorn`` is started as a
subprocess on 127.0.0.1, and an asyncio + httpx load generator drives each endpoint in turn for
``--duration`` seconds with ``--concurrency`` closed-loop clients: each sends its next request when the last
one returns (after a random pause of mean ``--think-ms``), each for a random workspace. Before that, one
client measures each endpoint alone for 5 s (the latency without queueing). Alongside the latencies it
reports the server's CPU time per request. Everything is bounded in time and stops by itself.

The machine's 2 cores are shared by the server, PostgreSQL and the load generator, as the output says.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import psutil
import sqlalchemy as sa

from core.db import get_engine, migrate, raw_copy
from core.ids import entity_uuid
from services.keys import create_api_key, hash_api_key, revoke_api_key

AS_OF = date(2026, 3, 31)
FEATURES = ("chat", "search", "api", "automation", "export")
USERS_PER_WORKSPACE = 50
HORIZON = 30


def _copy(engine, table: str, columns: list[str], rows) -> int:
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
        n += 1
    buf.seek(0)
    raw_copy(engine, f"copy analytics.{table} ({', '.join(columns)}) from stdin", buf)
    return n


def seed_rows(engine, n_workspaces: int, history_days: int, random_seed: int = 0) -> dict[str, int]:
    """Fill an empty, migrated database with the scale's rows; returns row counts per table."""
    rng = np.random.default_rng(random_seed)
    workspaces = [f"ws-{i:05d}" for i in range(n_workspaces)]
    ws_ids = {w: str(entity_uuid("workspace", w)) for w in workspaces}
    counts: dict[str, int] = {}

    def entities():
        for w in workspaces:
            yield "workspace", ws_ids[w], w, None
            for u in range(USERS_PER_WORKSPACE):
                ext = f"{w}-u{u:03d}"
                yield "user", entity_uuid("user", ext), ext, ws_ids[w]

    counts["entities"] = _copy(engine, "entities", ["entity_type", "entity_id", "external_id", "workspace_id"],
                               entities())

    # Per workspace: a level spread over three orders of magnitude, weekly seasonality, feature shares.
    levels = rng.lognormal(mean=4, sigma=1.5, size=n_workspaces)
    weekly = 1 + rng.uniform(0, 0.6, size=(n_workspaces, 1)) * np.sin(2 * np.pi * np.arange(7) / 7)
    shares = rng.dirichlet(np.ones(len(FEATURES)), size=n_workspaces)

    def predictions():
        for i, w in enumerate(workspaces):
            for h in range(1, HORIZON + 1):
                day = AS_OF + timedelta(days=h)
                total = levels[i] * weekly[i, day.weekday()]
                spread = 0.15 * np.sqrt(h)
                for dim, share in (("total", 1.0), *zip(FEATURES, shares[i])):
                    v = total * share
                    yield (ws_ids[w], "credit_consumption", "credits", dim, day, round(v, 6),
                           round(max(v * (1 - spread), 0), 6), round(v * (1 + spread), 6), 0.95, "ets-v1", AS_OF)

    counts["predictions"] = _copy(engine, "predictions", [
        "workspace_id", "prediction_type", "target_metric", "dimension", "prediction_date", "predicted_value",
        "confidence_lower", "confidence_upper", "confidence_level", "model_version", "as_of_date"], predictions())

    def history():
        for i, w in enumerate(workspaces):
            for d in range(history_days):
                day = AS_OF - timedelta(days=d)
                total = levels[i] * weekly[i, day.weekday()] * rng.gamma(20, 1 / 20)
                for dim, share in (("total", 1.0), *zip(FEATURES, shares[i])):
                    yield ws_ids[w], day, dim, round(total * share, 6), int(total * share * 3), 0, 5

    counts["workspace_daily_metrics"] = _copy(engine, "workspace_daily_metrics", [
        "workspace_id", "metric_date", "dimension", "credits", "calls", "errors", "active_users"], history())

    def churn():
        for w in workspaces:
            for u in range(USERS_PER_WORKSPACE):
                p = float(rng.beta(1.2, 4))
                idle = int(rng.integers(0, 40))
                factors = [
                    {"feature": "days_since_last_active", "contribution": round(p * 0.5, 4), "value": idle,
                     "direction": "up", "text": f"no activity for {idle} days"},
                    {"feature": "credits_trend_30d", "contribution": round(p * 0.3, 4),
                     "value": round(float(rng.normal(-0.1, 0.3)), 3), "direction": "down",
                     "text": "credit use is falling"},
                    {"feature": "features_used_30d", "contribution": round(p * 0.2, 4),
                     "value": int(rng.integers(1, 6)), "direction": "down", "text": "uses few features"},
                ]
                actions = [
                    {"action_id": "reengage_email", "title": "Send a re-engagement email",
                     "reason": "inactive for a while", "priority": "high" if p > 0.5 else "medium"},
                    {"action_id": "feature_tour", "title": "Offer a tour of unused features",
                     "reason": "narrow feature use", "priority": "low"},
                ]
                yield (ws_ids[w], entity_uuid("user", f"{w}-u{u:03d}"), AS_OF, round(p, 6), round(100 * p, 3),
                       json.dumps(factors), json.dumps(actions), int(30 * (1 - p)) if p > 0.5 else None, "xgb-v1")

    counts["churn_predictions"] = _copy(engine, "churn_predictions", [
        "workspace_id", "user_id", "prediction_date", "churn_probability", "risk_score", "risk_factors",
        "recommended_actions", "days_until_churn", "model_version"], churn())

    with engine.begin() as conn:
        conn.execute(sa.text(
            "insert into analytics.pipeline_runs (logical_date, step, status, finished_at)"
            " values (:d, 'publish', 'success', now())"), {"d": AS_OF})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("analyze"))
    return counts


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    sent: int = 0  # warm-up included
    server_cpu: float = 0.0  # seconds of server CPU over all ``sent`` requests

    def line(self, name: str) -> str:
        n = len(self.latencies)
        if not n:
            return f"{name:<22} no successful requests; errors {self.errors}"
        p50, p95, p99 = np.percentile(np.array(self.latencies) * 1000, [50, 95, 99])
        errs = sum(self.errors.values())
        detail = f" {self.errors}" if errs else ""
        return (f"{name:<22} {n:>7} {n / self.elapsed:>8.0f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} "
                f"{max(self.latencies) * 1000:>8.1f} {1000 * self.server_cpu / self.sent:>8.2f} {errs:>7}{detail}")


HEADER = (f"{'endpoint':<22} {'ok':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'cpu ms':>8} {'errors':>7}")


ENDPOINTS = {
    "healthz": ("/healthz", {}),
    "readyz": ("/readyz", {}),
    "consumption": ("/api/analytics/predictions/consumption", {"days_ahead": 30}),
    "consumption-week": ("/api/analytics/predictions/consumption", {"days_ahead": 30, "granularity": "week"}),
    "churn": ("/api/analytics/predictions/churn", {"limit": 100}),
}


def _request_for(endpoint: str, workspaces: list[str], keys: dict[str, str], rng: random.Random):
    """A function giving (path, params, headers) of a request for a random workspace."""
    path, params = ENDPOINTS[endpoint]
    if not path.startswith("/api/"):
        return lambda: (path, None, None)

    def make():
        ws = rng.choice(workspaces)
        return path, {"workspace_id": ws, **params}, {"X-API-Key": keys[ws]}
    return make


async def drive(base_url: str, make, concurrency: int, duration: float, think: float, warmup: float) -> Result:
    """Closed-loop clients for ``warmup + duration`` seconds; only the last ``duration`` seconds count.

    Each client has its own keep-alive connection (httpx's shared pool slows down with many connections) and
    pauses a random time (exponential, mean ``think``) between requests, so the clients do not fall into step.
    """
    result = Result()
    start = time.perf_counter()
    count_from, stop = start + warmup, start + warmup + duration

    async def one_client(pause: random.Random) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            if think:
                await asyncio.sleep(pause.uniform(0, think))  # clients start out of step
            while (now := time.perf_counter()) < stop:
                path, params, headers = make()
                result.sent += 1
                try:
                    r = await client.get(path, params=params, headers=headers)
                    outcome = None if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if now >= count_from:
                    if outcome is None:
                        result.latencies.append(time.perf_counter() - now)
                    else:
                        result.errors[outcome] = result.errors.get(outcome, 0) + 1
                if think:
                    await asyncio.sleep(pause.expovariate(1 / think))

    await asyncio.gather(*(one_client(random.Random(i)) for i in range(concurrency)))
    result.elapsed = time.perf_counter() - count_from
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers)."""
    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (proc, *proc.children(recursive=True)))


def _measure(runner, proc: subprocess.Popen, coro) -> Result:
    before = _cpu_seconds(proc.pid)
    result = runner(coro)
    result.server_cpu = _cpu_seconds(proc.pid) - before
    return result


def _wait_ready(base_url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not answer /healthz in time")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed-rows", action="store_true", help="seed a throwaway DB at the --workspaces scale")
    p.add_argument("--workspaces", type=int, default=1000)
    p.add_argument("--history-days", type=int, default=120)
    p.add_argument("--keep-db", action="store_true", help="keep the seeded database")
    p.add_argument("--endpoints", default="healthz,readyz,consumption,consumption-week,churn")
    p.add_argument("--duration", type=float, default=30, help="seconds per endpoint (after a 3 s warm-up)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--think-ms", type=float, default=0, help="pause between a client's requests")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--port", type=int, default=18765)
    args = p.parse_args(argv)
    if not 1 <= args.concurrency <= 500 or not 0 < args.duration <= 600:
        p.error("--concurrency must be 1..500 and --duration 0..600 s")
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if unknown := set(endpoints) - set(ENDPOINTS):
        p.error(f"unknown endpoints {sorted(unknown)}; choose from {', '.join(ENDPOINTS)}")

    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        p.error("set DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)")
    db_url, admin, db_name = server_url, None, None
    if args.seed_rows:
        db_name = f"pae_bench_{uuid.uuid4().hex[:8]}"
        admin = get_engine(url=server_url).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{db_name}"'))
        db_url = sa.engine.make_url(server_url).set(database=db_name).render_as_string(hide_password=False)
    engine = get_engine(url=db_url)
    pepper = secrets.token_urlsafe(16)
    key_ids: list[str] = []
    proc = None
    try:
        migrate(engine)
        if args.seed_rows:
            started = time.perf_counter()
            counts = seed_rows(engine, args.workspaces, args.history_days)
            print(f"seeded {db_name} in {time.perf_counter() - started:.0f}s: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        with engine.connect() as conn:
            workspaces = list(conn.execute(sa.text("""
                select e.external_id from analytics.entities e
                where e.entity_type = 'workspace'
                  and exists (select 1 from analytics.predictions p
                              where p.workspace_id = e.entity_id and p.prediction_type = 'credit_consumption')
                  and exists (select 1 from analytics.churn_predictions c where c.workspace_id = e.entity_id)
            """)).scalars())
        if not workspaces:
            print("no workspace has both consumption and churn predictions; use --seed-rows", file=sys.stderr)
            return 2
        keys = {w: create_api_key(engine, [w], "bench", pepper=pepper) for w in workspaces}
        with engine.connect() as conn:
            key_ids = [str(k) for k in conn.execute(
                sa.text("select id from analytics.api_keys where key_hash = any(:h)"),
                {"h": [hash_api_key(k, pepper) for k in keys.values()]}).scalars()]

        base_url = f"http://127.0.0.1:{args.port}"
        env = {**os.environ, "DATABASE_URL": db_url, "PAE_API_KEY_PEPPER": pepper}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.api.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(args.port), "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"],
            env=env, cwd=Path(__file__).resolve().parent.parent)
        _wait_ready(base_url, proc)

        runner = asyncio.run
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            pass
        rng = random.Random(0)
        print(f"\n{len(workspaces):,} workspaces; uvicorn with {args.workers} worker(s) on {base_url}; "
              f"load average before: {os.getloadavg()[0]:.1f}.")
        print(f"NOTE: this machine has {os.cpu_count()} cores, shared by the server, PostgreSQL and this load "
              "generator (httpx costs about as much CPU per request as the server), so the figures are a floor.\n"
              "'cpu ms' is the server process's CPU per request, which other load on the machine hardly changes.")

        print("\nOne client, no queueing (5 s per endpoint):")
        print(HEADER)
        for name in endpoints:
            solo = _measure(runner, proc, drive(base_url, _request_for(name, workspaces, keys, rng), 1, 5, 0, 0.5))
            print(solo.line(name), flush=True)

        print(f"\n{args.concurrency} concurrent clients, {args.duration:.0f} s per endpoint, think time "
              f"{args.think_ms:.0f} ms:")
        print(HEADER)
        for name in endpoints:
            make = _request_for(name, workspaces, keys, rng)
            res = _measure(runner, proc, drive(base_url, make, args.concurrency, args.duration, args.think_ms / 1000,
                                               warmup=3))
            print(res.line(name), flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f} (above {os.cpu_count()}: other work competed for CPU)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.seed_rows:
            for key_id in key_ids:
                revoke_api_key(engine, key_id)
        engine.dispose()
        if admin is not None and not args.keep_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'drop database if exists "{db_name}" with (force)'))
        elif db_name:
            print(f"kept database {db_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
