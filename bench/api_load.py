"""Open-loop load test of the API: each endpoint at a fixed arrival rate, then the highest rate it sustains.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/api_load.py --seed-rows
    ... --seed-rows --duration 10 --search-seconds 5 --cache on     # a short check (about 6 minutes)

With ``--seed-rows`` a throwaway database is created on DATABASE_URL's server, migrated and filled for
``--workspaces`` workspaces: 30 forecast days of the total and of 5 features, ``--history-days`` of daily history
and 50 users with churn scores per workspace (``seed_rows``); the 90-day credits, growth scenarios and agents a
what-if reads (``bench/what_if.py``); growth statuses, a week of hourly peak-usage forecasts and 4 agents' error-rate
alerts, forecasts and history (``bench/api_seed.py``). It is dropped at the end unless ``--keep-db``. Without it,
the database in DATABASE_URL is used as it is.

One API key per workspace is made, and ``uvicorn`` serves the app with ``--workers`` processes. For each
``--cache`` mode (``on``: the response and key caches; ``off``: every request computed and every key looked up;
``both``: off, then on, with a summary side by side) and each endpoint (consumption, churn, growth, peak usage,
error rates, what-if; random workspaces, random what-if adjustments):

1. open loop (``bench/open_loop.py``) at ``--rate`` requests/s (500) for ``--duration`` s (60) after a 3 s warm-up:
   p50/p95/p99/max latency from each request's scheduled time (coordinated omission counted), errors, achieved
   rate, the generator's dispatch lag and the server's CPU per request;
0. unless ``--no-warm`` (and with the cache on), every workspace's answer is asked for once per worker first,
   so the runs measure the steady state between two publishes (the pass's time is printed: the cold cost);
2. unless ``--no-search``, the highest rate with p99 <= ``--p99-ms`` (50) and no errors, by doubling from 25
   req/s and three bisections, ``--search-seconds`` (10) per trial.

Then the what-if p95 with ``--what-if-clients`` (8) closed-loop clients (target 200 ms). The load generator runs in
this process, on the same cores as the server and PostgreSQL: the output prints the load average next to the
figures; on a shared machine they are a floor.
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
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.open_loop import HEADER, Outcome, Request, open_loop, search_max_rate, warm  # noqa: E402
from core.db import get_engine, migrate, raw_copy  # noqa: E402
from core.ids import entity_uuid  # noqa: E402
from services.keys import create_api_key, hash_api_key, revoke_api_key  # noqa: E402

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



PREDICTIONS = "/api/analytics/predictions"
ENDPOINTS = {
    "consumption": ("GET", f"{PREDICTIONS}/consumption", {"days_ahead": 30}),
    "churn": ("GET", f"{PREDICTIONS}/churn", {"limit": 100}),
    "growth": ("GET", f"{PREDICTIONS}/growth", {"metric": "mau", "horizon_days": 90}),
    "peak": ("GET", f"{PREDICTIONS}/peak-usage", {"granularity": "hourly", "days_ahead": 7}),
    "error-rates": ("GET", f"{PREDICTIONS}/error-rates", {}),
    "what-if": ("POST", f"{PREDICTIONS}/what-if", {}),
}
WHAT_IF_BODIES = 2000  # distinct seeded what-if bodies drawn from


def request_maker(endpoint: str, workspaces: list[str], keys: dict[str, str], seed: int = 0):
    """A function giving the next request of an endpoint for a random workspace (prepared up front: cheap)."""
    from bench.what_if import HORIZON as WHAT_IF_DAYS
    from bench.what_if import scenario

    method, path, params = ENDPOINTS[endpoint]
    rng = random.Random(seed)
    auth = {w: b"X-API-Key: %s\r\n" % keys[w].encode() for w in workspaces}
    if method == "GET":
        prepared: list[Request] = [(method, f"{path}?{urlencode({'workspace_id': w, **params})}", auth[w], None)
                                   for w in workspaces]
    else:
        prepared = []
        for _ in range(WHAT_IF_BODIES):
            w = rng.choice(workspaces)
            body = {"workspace_id": w, "base_scenario": "likely", "adjustments": scenario(rng),
                    "metrics": ["credits", "dau", "wau", "mau"], "horizon_days": WHAT_IF_DAYS}
            prepared.append((method, path, auth[w], json.dumps(body).encode()))
    make = lambda: rng.choice(prepared)  # noqa: E731
    make.prepared = prepared
    return make


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn's workers)."""
    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (proc, *proc.children(recursive=True)))


def _wait_ready(base_url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
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


def _wait_idle(proc: subprocess.Popen, limit_s: float = 30) -> None:
    """After an overloaded run: wait until the server has drained its backlog (under 0.1 s of CPU in 0.5 s)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_seconds(proc.pid)
        time.sleep(0.5)
        if _cpu_seconds(proc.pid) - before < 0.1:
            return


class Server:
    """``uvicorn`` serving the app as a subprocess; ``restart`` gives a fresh one after an overloaded run (its
    abandoned requests would otherwise still be queued when the next run starts)."""

    def __init__(self, db_url: str, pepper: str, port: int, workers: int, cache: bool):
        self.env = {**os.environ, "DATABASE_URL": db_url, "PAE_API_KEY_PEPPER": pepper, "OMP_NUM_THREADS": "1",
                    "PAE_API_RESPONSE_CACHE": str(cache).lower()}
        if not cache:
            self.env["PAE_API_KEY_CACHE_SECONDS"] = "0"
        self.port, self.workers, self.proc = port, workers, None
        self.restarts = 0

    def start(self) -> "Server":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.api.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers), "--no-access-log", "--log-level", "warning"],
            env=self.env, cwd=Path(__file__).resolve().parent.parent)
        _wait_ready(f"http://127.0.0.1:{self.port}", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()


def run_mode(args, label: str, server: Server, makers: dict, workspaces, keys, runner) -> dict:
    """Fixed-rate runs, the max-rate search and the what-if closed-loop check for one server; returns figures."""
    base_url = f"http://127.0.0.1:{args.port}"
    figures: dict[str, dict] = {}
    restarts_seen = [server.restarts]

    def warmed(endpoint: str) -> None:
        """Every workspace's answer asked for over new connections until every worker has it: the cache in steady
        state (a GET answer is computed once per worker and data version). What-if answers are not cached (its
        stored reads are), so its passes stop at 12."""
        restarts_seen[0] = server.restarts
        if not args.warm or server.env["PAE_API_RESPONSE_CACHE"] != "true":
            return  # without the cache nothing is kept to warm
        prepared = makers[endpoint].prepared
        if endpoint == "what-if":  # one body per workspace keeps its stored reads; no X-Cache: a few times each
            prepared = list({r[2]: r for r in prepared}.values()) * (2 * args.workers)
        t0 = time.perf_counter()
        passes, computed, failed = runner(warm("127.0.0.1", args.port, prepared))
        print(f"  (warm-up {endpoint}: {computed} answers computed, {failed} failed, {passes} passes over "
              f"{len(prepared)} requests, {time.perf_counter() - t0:.1f} s)", flush=True)

    def at(endpoint: str, rate: float, seconds: float, warmup: float) -> tuple[Outcome, float]:
        if server.restarts != restarts_seen[0]:
            restarts_seen[0] = server.restarts
            warmed(endpoint)
        before = _cpu_seconds(server.proc.pid)
        outcome = runner(open_loop("127.0.0.1", args.port, makers[endpoint], rate, seconds, warmup=warmup,
                                   connections=args.connections, timeout=args.timeout))
        cpu = 1000 * (_cpu_seconds(server.proc.pid) - before) / (rate * (seconds + warmup))
        if outcome.n_errors:
            server.restart()  # an overloaded server still holds the requests its clients gave up on
        else:
            _wait_idle(server.proc)
        return outcome, cpu

    print(f"\n== {label} ==\nopen loop, {args.rate:.0f} req/s for {args.duration:.0f} s per endpoint after a 3 s "
          f"warm-up ({args.connections} connections; latency from the scheduled time):")
    print(HEADER + f" {'srv cpu':>8} {'load':>5}")
    for name in args.endpoints:
        warmed(name)
        outcome, cpu = at(name, args.rate, args.duration, 3.0)
        figures[name] = {"fixed": outcome}
        print(outcome.line(name) + f" {cpu:>8.2f} {os.getloadavg()[0]:>5.1f}", flush=True)

    if args.search:
        print(f"\nhighest rate with p99 <= {args.p99_ms:.0f} ms and no errors ({args.search_seconds:.0f} s trials "
              "after 2 s of warm-up; doubling from 25 req/s, then 3 bisections):")
        for name in args.endpoints:
            warmed(name)
            trials = []
            best = search_max_rate(lambda r: at(name, r, args.search_seconds, 2.0)[0], args.p99_ms,
                                   report=trials.append)
            figures[name]["max_rate"] = best
            tried = ", ".join(f"{t.rate:.0f}:{t.percentiles()[2]:.0f}ms" + (f"/{t.errors}" if t.errors else "")
                              for t in trials)
            print(f"{name:<16} {best:>7.0f} req/s   (rate:p99 tried: {tried}; load {os.getloadavg()[0]:.1f})",
                  flush=True)

    if "what-if" in args.endpoints and args.what_if_clients:
        from bench.what_if import drive as what_if_drive

        latencies, errors = asyncio.run(what_if_drive(base_url, workspaces, keys, args.what_if_requests,
                                                      args.what_if_clients, seed=7))
        p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
        figures["what-if"]["closed_p95"] = p95
        print(f"\nwhat-if, {args.what_if_clients} closed-loop clients, {len(latencies)} answers: p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms, p99 {p99:.1f} ms, errors {errors or 0} (target p95 <= 200 ms: "
              f"{'met' if p95 <= 200 else 'NOT met'}); load {os.getloadavg()[0]:.1f}", flush=True)
    return figures


def summary(results: dict[str, dict], args) -> None:
    modes = list(results)
    print(f"\nsummary (p99 at {args.rate:.0f} req/s; max rate with p99 <= {args.p99_ms:.0f} ms), cache "
          + " / ".join(modes) + ":")
    for name in args.endpoints:
        cells = []
        for mode in modes:
            fig = results[mode][name]
            fixed: Outcome = fig["fixed"]
            ok = "ok" if fixed.passes(args.p99_ms) else "FAIL"
            best = f", max {fig['max_rate']:.0f} req/s" if "max_rate" in fig else ""
            cells.append(f"p99 {fixed.percentiles()[2]:.1f} ms, {fixed.n_errors} errors [{ok}]{best}")
        print(f"{name:<16} " + "  |  ".join(cells))


def main(argv: list[str] | None = None) -> int:
    from core.settings import Settings

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed-rows", action="store_true", help="seed a throwaway DB at the --workspaces scale")
    p.add_argument("--workspaces", type=int, default=1000)
    p.add_argument("--history-days", type=int, default=120)
    p.add_argument("--keep-db", action="store_true", help="keep the seeded database")
    p.add_argument("--endpoints", default=",".join(ENDPOINTS))
    p.add_argument("--rate", type=float, default=500, help="requests per second of the fixed-rate runs")
    p.add_argument("--duration", type=float, default=60, help="measured seconds per endpoint (after 3 s warm-up)")
    p.add_argument("--search", action=argparse.BooleanOptionalAction, default=True, help="search the max rate")
    p.add_argument("--search-seconds", type=float, default=10, help="measured seconds per search trial")
    p.add_argument("--p99-ms", type=float, default=50)
    p.add_argument("--cache", choices=("on", "off", "both"), default="both",
                   help="the API's response and key caches (both: off, then on)")
    p.add_argument("--workers", type=int, default=Settings().api_workers, help="uvicorn worker processes")
    p.add_argument("--connections", type=int, default=128, help="most open connections of the load generator")
    p.add_argument("--timeout", type=float, default=5, help="seconds after its due time a request is an error")
    p.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True,
                   help="before each endpoint (and after a restart), ask every workspace's answer over new "
                        "connections, so the runs measure the steady state, not a cold cache")
    p.add_argument("--what-if-clients", type=int, default=8, help="closed-loop what-if clients (0: skip)")
    p.add_argument("--what-if-requests", type=int, default=400)
    p.add_argument("--port", type=int, default=18765)
    args = p.parse_args(argv)
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if unknown := set(args.endpoints) - set(ENDPOINTS):
        p.error(f"unknown endpoints {sorted(unknown)}; choose from {', '.join(ENDPOINTS)}")
    if not (0 < args.rate <= 50_000 and 0 < args.duration <= 600 and 0 < args.search_seconds <= 120
            and 1 <= args.connections <= 1000 and args.workers >= 1):
        p.error("--rate 0..50000, --duration 0..600 s, --search-seconds 0..120, --connections 1..1000, --workers >= 1")
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
    server = None
    try:
        migrate(engine)
        if args.seed_rows:
            from bench.api_seed import seed_all_endpoints
            from bench.what_if import seed_what_if

            started = time.perf_counter()
            counts = seed_rows(engine, args.workspaces, args.history_days)
            names = [f"ws-{i:05d}" for i in range(args.workspaces)]
            counts.update(seed_what_if(engine, names))
            counts.update(seed_all_endpoints(engine, names))
            print(f"seeded {db_name} in {time.perf_counter() - started:.0f}s: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        with engine.connect() as conn:
            workspaces = list(conn.execute(sa.text("""
                select e.external_id from analytics.entities e
                where e.entity_type = 'workspace'
                  and exists (select 1 from analytics.predictions p
                              where p.workspace_id = e.entity_id and p.prediction_type = 'credit_consumption')
                  and exists (select 1 from analytics.churn_predictions c where c.workspace_id = e.entity_id)
                order by e.external_id
            """)).scalars())
        if not workspaces:
            print("no workspace has both consumption and churn predictions; use --seed-rows", file=sys.stderr)
            return 2
        keys = {w: create_api_key(engine, [w], "bench", pepper=pepper) for w in workspaces}
        with engine.connect() as conn:
            key_ids = [str(k) for k in conn.execute(
                sa.text("select id from analytics.api_keys where key_hash = any(:h)"),
                {"h": [hash_api_key(k, pepper) for k in keys.values()]}).scalars()]
        makers = {name: request_maker(name, workspaces, keys) for name in args.endpoints}
        runner = asyncio.run
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            pass
        print(f"\n{len(workspaces):,} workspaces; uvicorn with {args.workers} worker(s); {os.cpu_count()} cores shared "
              f"by the server, PostgreSQL and this load generator; load average before: {os.getloadavg()[0]:.1f}.\n"
              "'lag' is how late the generator dispatched (its own CPU shortage, counted in the latencies); "
              "'srv cpu' the server's CPU ms per request.")
        results = {}
        for mode in (("off", "on") if args.cache == "both" else (args.cache,)):
            server = Server(db_url, pepper, args.port, args.workers, cache=mode == "on").start()
            label = ("cache on: responses until the data version moves, keys for 30 s" if mode == "on"
                     else "cache off: every request computed, every key looked up")
            results[mode] = run_mode(args, label, server, makers, workspaces, keys, runner)
            server.stop()
            print(f"(server restarted {server.restarts} times after runs with errors)")
        summary(results, args)
        print(f"load average after: {os.getloadavg()[0]:.1f} (above {os.cpu_count()}: other work competed for CPU)")
    finally:
        if server is not None:
            server.stop()
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
