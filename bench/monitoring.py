"""The nightly cost of the monitor step (realised accuracy of every kind) on a prepared platform.

    .venv/bin/python bench/monitoring.py --workspaces 1000 --nights 2 30

What is measured: ``pipelines.nightly.monitor_step`` for the platform's last day ``D`` (2026-11-24), as one
nightly run calls it (every kind, re-scoring the last ``monitor_rescore_days``, alerts, MLflow), in a child
process: wall seconds, peak memory, rows scored per kind; then each kind's share (``monitor_kind`` again: the
step is idempotent, so the second pass does the same work).

The predictions are **synthesised**, not made by the models: a full nightly run of every kind at 1,000 workspaces
takes most of an hour here, and the monitor's cost depends on how many snapshots and outcomes there are, not on
their values. For each of ``--nights`` as-of dates ``D - N .. D - 1`` the bench writes, in the exact keys each
kind publishes and snapshots (``pipelines/monitor.py`` scopes): consumption credits and growth DAU/WAU/MAU
(workspace totals at 1/7/14/30 days ahead), peak usage hourly calls/credits and daily peaks (1 and 7 days ahead),
agent error rates per agent (1/7/14 days ahead); values are the same day a week (or weeks) earlier times seeded
noise. Outcomes: churn scores for every user of the platform at ``D - 30 - k`` and agent alerts at ``D - 14 - k``
(``k < monitor_rescore_days``), seeded probabilities. With ``--nights 2`` only the first night's 1-day-ahead
rows have happened; ``--nights 30`` is the steady state after a month (every horizon scored).

The prepared database is shared: the synthetic rows carry ``model_version = 'bench-monitor'`` and are deleted
afterwards (existing rows are never overwritten); the accuracy rows the step writes for those days stay.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.common import timed_phase  # noqa: E402
from bench.prepare import END, prepared_platform  # noqa: E402

D = END
TAG = "bench-monitor"
SNAPSHOT_COLUMNS = ("workspace_id, prediction_type, target_metric, dimension, granularity, scenario, prediction_date,"
                    " prediction_hour, as_of_date, days_ahead, predicted_value, confidence_lower, confidence_upper,"
                    " confidence_level, model_version")

# (kind, SQL) per as-of date :a; noise from setseed; ``on conflict do nothing``: real rows are never replaced
_SYNTH = {
    "consumption": f"""
insert into analytics.prediction_snapshots ({SNAPSHOT_COLUMNS})
select m.workspace_id, 'credit_consumption', 'credits', 'total', 'day', 'likely', cast(:a as date) + h, 0, :a, h,
       v, v * 0.6, v * 1.4, 0.95, '{TAG}'
from unnest(array[1, 7, 14, 30]) as h
join analytics.workspace_daily_metrics m on m.dimension = 'total'
     and m.metric_date = cast(:a as date) + h - 7 * ((h + 6) / 7)
cross join lateral (select m.credits * (0.8 + 0.4 * random()) as v) r
on conflict do nothing""",
    "growth": f"""
insert into analytics.prediction_snapshots ({SNAPSHOT_COLUMNS})
select g.workspace_id, 'growth', x.metric, 'total', 'day', 'likely', cast(:a as date) + h, 0, :a, h,
       x.value * r.f, x.value * r.f * 0.8, x.value * r.f * 1.2, 0.95, '{TAG}'
from unnest(array[1, 7, 14, 30]) as h
join analytics.workspace_growth_metrics g on g.metric_date = cast(:a as date) + h - 7 * ((h + 6) / 7)
cross join lateral (values ('dau', g.dau), ('wau', g.wau), ('mau', g.mau)) as x(metric, value)
cross join lateral (select 0.9 + 0.2 * random() as f) r
on conflict do nothing""",
    "peak_usage": f"""
insert into analytics.prediction_snapshots ({SNAPSHOT_COLUMNS})
select m.workspace_id, 'peak_usage', x.metric, 'total', x.gran, 'likely', cast(:a as date) + h, x.hour, :a, h,
       x.value, x.value * 0.5, x.value * 1.6, 0.95, '{TAG}'
from unnest(array[1, 7]) as h
join analytics.workspace_daily_metrics m on m.dimension = 'total' and m.metric_date = cast(:a as date) + h - 7
cross join lateral (
    select metric, 'hour' as gran, hour, base / 24 * (0.5 + random()) as value
    from generate_series(0, 23) as hour,
         (values ('calls', m.calls::float8), ('credits', m.credits)) as v(metric, base)
    union all
    select metric || '_peak', 'day', 9 + floor(random() * 9)::int, base / 8 * (0.7 + 0.6 * random())
    from (values ('calls', m.calls::float8), ('credits', m.credits)) as v(metric, base)
) as x
on conflict do nothing""",
    "agent_errors": f"""
insert into analytics.prediction_snapshots ({SNAPSHOT_COLUMNS})
select a.workspace_id, 'error_rate', 'error_rate', e.external_id, 'day', 'likely', cast(:a as date) + h, 0, :a, h,
       r.v, greatest(r.v - 0.05, 0), least(r.v + 0.1, 1), 0.95, '{TAG}'
from unnest(array[1, 7, 14]) as h
join analytics.agent_daily_metrics a on a.calls > 0 and a.metric_date = cast(:a as date) + h - 7 * ((h + 6) / 7)
join analytics.entities e on e.entity_type = 'agent' and e.entity_id = a.agent_id
cross join lateral (select least(1.0, a.errors::float8 / a.calls * (0.5 + random())) as v) r
on conflict do nothing""",
}

_CHURN = f"""
insert into analytics.churn_predictions (workspace_id, user_id, prediction_date, churn_probability, risk_score,
    risk_factors, model_version)
select u.workspace_id, u.entity_id, :a, r.p, round((100 * r.p)::numeric, 3), '[]', '{TAG}'
from analytics.entities u
cross join lateral (select random() as p) r
where u.entity_type = 'user' and u.workspace_id is not null and u.first_seen_at < cast(:a as date)
on conflict do nothing"""

_ALERTS = f"""
insert into analytics.agent_error_alerts (workspace_id, agent_id, as_of_date, status, alert_level, probability,
    threshold, threshold_source, current_rate, baseline_rate, calls_last_7d, errors_last_7d, reason, risk_rank,
    model_version)
select b.workspace_id, b.agent_id, :a, case when r.p >= 0.15 then 'escalating' else 'ok' end,
       case when r.p >= 0.6 then 'critical' when r.p >= 0.35 then 'warning' when r.p >= 0.15 then 'watch' end,
       r.p, least(0.5, greatest(3 * b.rate, b.rate + 0.05)), 'default', b.rate, b.rate, b.calls, b.errors,
       'bench', r.p, '{TAG}'
from (select workspace_id, agent_id, sum(calls) as calls, sum(errors) as errors,
             greatest(sum(errors)::float8 / nullif(sum(calls), 0), 0.001) as rate
      from analytics.agent_daily_metrics where metric_date between cast(:a as date) - 27 and :a
      group by 1, 2 having sum(calls) > 0) b
cross join lateral (select power(random(), 3) as p) r
on conflict do nothing"""

_CLEANUP = (f"delete from analytics.prediction_snapshots where model_version = '{TAG}'",
            f"delete from analytics.churn_predictions where model_version = '{TAG}'",
            f"delete from analytics.agent_error_alerts where model_version = '{TAG}'")


def synthesise(url: str, nights: int, rescore_days: int) -> dict:
    from core.db import get_engine

    engine = get_engine(url=url)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(sa.text("select setseed(0.42)"))
        for k in range(nights, 0, -1):
            for kind, sql in _SYNTH.items():
                counts[kind] = counts.get(kind, 0) + conn.execute(sa.text(sql), {"a": D - timedelta(days=k)}).rowcount
        for k in range(rescore_days):
            counts["churn_scores"] = counts.get("churn_scores", 0) + conn.execute(
                sa.text(_CHURN), {"a": D - timedelta(days=30 + k)}).rowcount
            counts["agent_alerts"] = counts.get("agent_alerts", 0) + conn.execute(
                sa.text(_ALERTS), {"a": D - timedelta(days=14 + k)}).rowcount
    engine.dispose()
    return counts


def cleanup(url: str) -> None:
    from core.db import get_engine

    engine = get_engine(url=url)
    with engine.begin() as conn:
        for sql in _CLEANUP:
            conn.execute(sa.text(sql))
    engine.dispose()


def run_monitor(settings) -> dict:
    from pipelines.nightly import monitor_step

    return monitor_step(D.isoformat(), settings)


def per_kind(settings) -> dict[str, float]:
    from core.db import get_engine
    from pipelines.kinds import get_kind, kind_names
    from pipelines.monitor import monitor_kind

    engine = get_engine(url=settings.database_url)
    out = {}
    for name in kind_names():
        t = time.perf_counter()
        if monitor_kind(settings, engine, get_kind(name), D):
            out[name] = round(time.perf_counter() - t, 2)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--nights", type=int, nargs="+", default=[2, 30],
                    help="as-of dates of synthesised predictions before D (2: two nights; 30: steady state)")
    args = ap.parse_args()

    from core.settings import limit_threads

    limit_threads(2)
    settings, url = prepared_platform(args.workspaces)
    print(f"monitor step benchmark: {args.workspaces} workspaces, D = {D}, re-scoring {settings.monitor_rescore_days} "
          f"days, window {settings.monitor_window_days} days, synthesised predictions (see the docstring), "
          f"2 cores shared (load average {__import__('os').getloadavg()[0]:.1f})", flush=True)
    for nights in args.nights:
        cleanup(url)
        try:
            wall, rss, counts = timed_phase(synthesise, url, nights, settings.monitor_rescore_days)
            print(f"\n{nights} night(s) of predictions synthesised in {wall:.1f} s: "
                  + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
            wall, rss, out = timed_phase(run_monitor, settings)
            scored = sum(out["scored_rows"].values()) + sum(out["outcome_rows"].values())
            print(f"monitor step: {wall:.1f} s wall, peak {rss:.0f} MiB, {scored:,} accuracy rows written "
                  f"(values: {out['scored_rows']}; outcomes: {out['outcome_rows']}), "
                  f"alerting kinds: {out['alert_kinds'] or 'none'}", flush=True)
            secs = out.get("seconds", {})
            print("  inside the step: " + ", ".join(f"{k} {v:.1f} s" for k, v in secs.items())
                  + f"; the rest (A/B comparison, step records, imports) {wall - sum(secs.values()):.1f} s", flush=True)
            with sa.create_engine(url).connect() as conn:
                rows = conn.execute(sa.text(
                    "select prediction_type, sum(n)::bigint from analytics.prediction_accuracy"
                    " where scored_date between :a and :b group by 1 order by 1"),
                    {"a": D - timedelta(days=settings.monitor_rescore_days - 1), "b": D}).all()
                outcomes = conn.execute(sa.text(
                    "select prediction_type, sum(n)::bigint from analytics.classification_accuracy"
                    " where scored_date = :b group by 1 order by 1"), {"b": D}).all()
            print("predictions scored (n) in the re-scored days: " + ", ".join(f"{t} {n:,}" for t, n in rows)
                  + "; outcomes scored: " + (", ".join(f"{t} {n:,}" for t, n in outcomes) or "none"))
            wall, rss, shares = timed_phase(per_kind, settings)
            print(f"per kind, a second identical pass (warm caches, no MLflow), {wall:.1f} s: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in shares.items()), flush=True)
        finally:
            cleanup(url)


if __name__ == "__main__":
    main()
