"""Deterministic synthetic SaaS platform: usage events plus the ground truth behind them.

``generate_platform`` writes, under ``out_dir``:

* ``events/part-NNNNN.parquet``: usage events in the source contract (DESIGN.md), one file per chunk
  of ``CHUNK_WORKSPACES`` workspaces, so memory stays bounded. Rows are aggregates with a ``count``
  column: one row per (user, active day, feature, status) and one row per (agent, day, 6-hour block,
  status); agent rows have a null ``user_id``. Rare batch-job spikes have neither user nor agent.
* ``ground_truth/{workspaces,users,agents,incidents,spikes}.parquet``: what really happened, kept
  apart from the events and used only to score predictions and alerts.
* ``manifest.json``: arguments, counts, files, the feature price list and platform outage days.

Every workspace is simulated in its local calendar (fixed UTC offsets) from ``start_date - 1`` to
``end_date + 1`` and its events are cut to the UTC window ``[start_date, end_date + 1)``, so every
UTC day in the window is complete. Ground-truth dates (signup, churn, reactivation, incidents,
spikes, level shifts) are workspace-local calendar dates; the UTC offset is in ``workspaces.parquet``.
A churned user's events all fall before ``churn_date`` in local time, hence before
``churn_date + 1 day`` in UTC. Null dates mean "none in the window" (for agents' ``start_date``:
already running when it opens). Incidents still building up at the end of the window keep their
intended peak and end dates, which may fall after ``end_date``.

Each workspace draws from its own generator, seeded by ``SeedSequence(seed, spawn_key=(1, i))``; the
platform-wide draws (sizes, agent counts, outages) use ``spawn_key=(0,)``. Output therefore does not
depend on chunking, and the same arguments give identical files.

Generative model, in short: workspace sizes are lognormal (rescaled to the requested mean); each
workspace has a time zone with its country's holidays, weekly profile, August and year-end dips, a
trend (growth, flat, decline, saturating), an optional level shift and day-level AR noise. Users
sign up over time, have an engagement level (activity probability), calls per active day, preferred
features and an error propensity; a time-varying hazard (low engagement, narrow feature use, errors
and incident exposure, small workspace, short tenure raise it) decides churn. About 60% of churners
fade over 2-6 weeks first; some churned users come back. Agents follow workspace activity (or run
on a schedule) with a base error rate and incidents whose error rate ramps up over 3-10 days.

The static draws (platform plan, workspace, agent and user traits) are in
:mod:`pipelines.simulator.traits`; this module simulates activity and writes the files.
"""
from __future__ import annotations

import json
import math
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

from core.progress import progress
from pipelines.ingest.extract import EVENT_SCHEMA as STAGED_EVENT_SCHEMA
from pipelines.simulator.traits import (
    FEATURE_PRICE,
    FEATURES,
    ZONES,
    _agent_traits,
    _day_multipliers,
    _Plan,
    _plan_platform,
    _user_traits,
    _Workspace,
    _workspace_traits,
)

DEFAULT_END_DATE = date(2026, 11, 24)
CHUNK_WORKSPACES = 50
USER_BLOCK = 2048  # users simulated together; bounds the users x days matrices

BATCH_FEATURES = np.array([3, 5, 6])  # data_analysis, api, automation: where batch-job spikes land
ERROR_CREDIT_SHARE = 0.1  # failed calls are billed at this share of the price

# The source contract as the engine stages it, with a compact count for the generated files.
EVENT_SCHEMA = STAGED_EVENT_SCHEMA.set(STAGED_EVENT_SCHEMA.get_field_index("count"), pa.field("count", pa.int32()))


@dataclass
class GenerationSummary:
    """What ``generate_platform`` wrote."""

    out_dir: Path
    n_workspaces: int
    n_users: int
    n_agents: int
    n_event_rows: int
    start_date: date
    end_date: date
    event_files: list[Path]


_ROW_DTYPES = (np.int64, np.int64, np.int64, np.int64, np.int8, np.float64, bool, np.int32)


class _Rows:
    """Event rows of one workspace as column arrays: local day index, second of day, user, agent
    (global indices, -1 for none), feature code, credits, is-error flag and count."""

    def __init__(self) -> None:
        self.parts: list[tuple] = []

    def add(self, day, sec, user, agent, feat, credits, error, count) -> None:
        n = len(day)
        if n:
            cols = (day, sec, user, agent, feat, credits, error, count)
            self.parts.append(tuple(np.broadcast_to(np.asarray(v, dt), (n,)) for v, dt in zip(cols, _ROW_DTYPES)))

    def daily_credits(self, n_days: int) -> np.ndarray:
        return sum((np.bincount(p[0], weights=p[5], minlength=n_days) for p in self.parts), np.zeros(n_days))

    def columns(self) -> list[np.ndarray]:
        if not self.parts:
            return [np.empty(0, dtype=dt) for dt in _ROW_DTYPES]
        return [np.concatenate(col) for col in zip(*self.parts)]


def generate_platform(n_workspaces: int, days: int, seed: int, out_dir: Path,
                      end_date: date | None = None, users_per_workspace: float = 50.0) -> GenerationSummary:
    """Generate a synthetic SaaS platform: usage events and the ground truth behind them.

    Args:
        n_workspaces: Number of workspaces (tenants).
        days: Length of the window in days, ending at ``end_date`` inclusive.
        seed: Seed of every random draw; the same arguments give identical output.
        out_dir: Folder to write into (created if missing; old event parts are replaced).
        end_date: Last day of the window (UTC). Defaults to 2026-11-24.
        users_per_workspace: Mean users per workspace (sizes are heavy-tailed around it).

    Returns:
        A summary with counts, the window and the event files written.

    Raises:
        ValueError: If ``n_workspaces``, ``days`` or ``users_per_workspace`` is not positive.
    """
    if n_workspaces < 1 or days < 1 or users_per_workspace <= 0:
        raise ValueError("n_workspaces, days and users_per_workspace must be positive, "
                         f"got {n_workspaces}, {days}, {users_per_workspace}.")
    end = end_date or DEFAULT_END_DATE
    start = end - timedelta(days=days - 1)
    out_dir = Path(out_dir)
    events_dir, truth_dir = out_dir / "events", out_dir / "ground_truth"
    events_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    for old in events_dir.glob("part-*.parquet"):
        old.unlink()

    plan = _plan_platform(n_workspaces, start, end, seed, users_per_workspace)
    event_files, n_rows, truth_rows = [], 0, dict.fromkeys(TRUTH_SCHEMAS, 0)
    with ExitStack() as stack:
        advance = stack.enter_context(progress("generating workspaces", n_workspaces, "workspaces"))
        writers = {name: stack.enter_context(pq.ParquetWriter(truth_dir / f"{name}.parquet", schema))
                   for name, schema in TRUTH_SCHEMAS.items()}
        for chunk_no, lo in enumerate(range(0, n_workspaces, CHUNK_WORKSPACES)):
            chunk = range(lo, min(lo + CHUNK_WORKSPACES, n_workspaces))
            row_parts, truths = zip(*(_simulate_workspace(plan, w) for w in chunk))
            for name, writer in writers.items():
                frame = pd.concat([t[name] for t in truths], ignore_index=True)
                writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))
                truth_rows[name] += len(frame)
            table = _events_table(plan, chunk, row_parts)
            path = events_dir / f"part-{chunk_no:05d}.parquet"
            pq.write_table(table, path, compression="zstd")
            event_files.append(path)
            n_rows += table.num_rows
            advance(len(chunk))

    summary = GenerationSummary(out_dir=out_dir, n_workspaces=n_workspaces, n_users=int(plan.sizes.sum()),
                                n_agents=int(plan.agent_counts.sum()), n_event_rows=n_rows,
                                start_date=start, end_date=end, event_files=event_files)
    manifest = {
        "generator": "pipelines.simulator.generate",
        "arguments": {"n_workspaces": n_workspaces, "days": days, "seed": seed, "end_date": end.isoformat(),
                      "users_per_workspace": users_per_workspace},
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "counts": {"workspaces": n_workspaces, "users": summary.n_users, "agents": summary.n_agents,
                   "incidents": truth_rows["incidents"], "event_rows": n_rows},
        "event_files": [p.relative_to(out_dir).as_posix() for p in event_files],
        "ground_truth_dates": "workspace-local calendar dates (see workspaces.utc_offset_hours)",
        "feature_prices": dict(zip(FEATURES, FEATURE_PRICE.tolist())),
        "platform_outages": [str(d) for d in plan.dates[plan.outage]],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return summary


# --- agents ---------------------------------------------------------------------------------------

def _agent_rows(rng: np.random.Generator, plan: _Plan, ws: _Workspace, ag: dict, dau: np.ndarray,
                calls_mult: np.ndarray, rows: _Rows) -> None:
    """Agent calls: follow daily active users (or the trend, if scheduled), split in 6-hour blocks."""
    n, n_days = ag["n"], plan.n_days
    if n == 0:
        return
    busy = dau[dau > 0]
    mean_dau = busy.mean() if len(busy) else 0.0
    lam = max(3.0, 0.8 * mean_dau) * ag["rate_noise"]
    follow = dau / mean_dau if mean_dau > 0 else np.zeros(n_days)
    d = np.arange(n_days)
    alive = (d >= ag["start"][:, None]) & (d < ag["stop"][:, None])
    expected = np.where(ag["scheduled"][:, None], calls_mult, follow) * lam[:, None] * alive
    remaining = rng.poisson(expected)
    left = np.ones(n)
    for b in range(4):
        w = ag["blocks"][:, b]
        share = np.clip(w / np.maximum(left, 1e-12), 0, 1)[:, None]
        part = remaining if b == 3 else rng.binomial(remaining, share)
        remaining = remaining - part
        left = left - w
        errors = rng.binomial(part, ag["err"])
        for calls, is_err in ((part - errors, False), (errors, True)):
            a_idx, d_idx = np.nonzero(calls)
            cnt = calls[a_idx, d_idx]
            feat = ag["feature"][a_idx]
            price = FEATURE_PRICE[feat] * ws.price_mult * (ERROR_CREDIT_SHARE if is_err else 1.0)
            credits = cnt * price * rng.lognormal(0, 0.25, len(cnt))
            sec = b * 21600 + rng.integers(0, 21600, len(cnt))
            rows.add(d_idx, sec, -1, plan.agent_offset[ws.index] + a_idx, feat, credits, is_err, cnt)


# --- users --------------------------------------------------------------------------------------

def _user_block(rng: np.random.Generator, plan: _Plan, ws: _Workspace, u: dict, days: dict, rows: _Rows,
                user0: int) -> tuple[np.ndarray, dict]:
    """Simulate one block of users: churn, activity and their event rows.

    Users keep weekly routines: a regular user is active on most of their usual weekdays and rarely
    on others, which makes small workspaces' series more predictable than coin flips.

    Returns:
        Daily active users of the block and the block's lifecycle columns (churn, reactivation).
    """
    n, n_days = len(u["p"]), plan.n_days
    d = np.arange(n_days)
    signup = np.maximum(u["signup"], 0)
    tenure = d[None, :] - u["signup"][:, None]
    hazard = u["hazard"][:, None] * (1 + 2.5 * np.exp(-np.maximum(tenure, 0) / 40.0))
    hazard *= 1 + 6 * days["exposure"]
    hazard[(d[None, :] <= signup[:, None]) | (d[None, :] == 0)] = 0.0
    crossed = np.cumsum(hazard, axis=1) >= u["threshold"][:, None]
    churn = np.where(crossed[:, -1], crossed.argmax(axis=1), n_days)
    churn[churn == n_days - 1] = n_days  # leaving on end_date + 1 is not a churn within the window
    by_workspace = ws.end_idx < churn
    churn = np.minimum(churn, ws.end_idx)
    churned = churn < n_days
    fade = churned & ~by_workspace & u["fade"]
    react_at = churn + u["react_gap"]
    # one churn per user at most: nobody returns to a workspace that cancels later
    react = churned & u["react"] & (react_at <= n_days - 2) & (ws.end_idx == n_days)
    react_at = np.where(react, react_at, n_days)

    after = d[None, :] >= react_at[:, None]
    alive = ((d[None, :] >= signup[:, None]) & (d[None, :] < churn[:, None])) | after
    fade_left = np.clip((churn[:, None] - d[None, :]) / u["fade_len"][:, None], 0.0, 1.0)
    fade_mult = np.where(fade[:, None], 0.35 + 0.65 * fade_left, 1.0)
    fade_mult[after] = 1.0

    def weekly(level: np.ndarray) -> np.ndarray:
        x = np.minimum(level[:, None] * days["by_dow"], 0.98)
        reg = u["regularity"][:, None]
        return (reg * 0.95 * (u["routine"] < x) + (1 - reg) * x)[:, plan.dow]

    # busy and quiet spells (projects come and go): a slow log-AR(1) per user
    phi = 0.97
    shocks = rng.normal(0, 0.4 * math.sqrt(1 - phi**2), (n, n_days))
    spell = np.exp(lfilter([1.0], [1.0, -phi], shocks, axis=1, zi=rng.normal(0, 0.4 * phi, (n, 1)))[0])
    prob = np.where(after, weekly(u["react_p"]), weekly(u["p"])) * days["calendar"] * fade_mult * spell
    for j in range(u["vac_start"].shape[1]):
        prob[(d[None, :] >= u["vac_start"][:, j, None]) & (d[None, :] < u["vac_end"][:, j, None])] *= 0.05
    active = alive & (rng.random((n, n_days)) < prob)
    active[u["signup"] >= 1, u["signup"][u["signup"] >= 1]] = True  # new users try the product at once
    ui, di = np.nonzero(active)

    # one row per feature used: the preferred draw, sometimes a second one with fewer calls;
    # cheap features get more calls than expensive ones
    cum_prefs = np.cumsum(u["prefs"], axis=1)[ui]
    first_f = (rng.random(len(ui))[:, None] > cum_prefs).sum(axis=1)
    second_f = (rng.random(len(ui))[:, None] > cum_prefs).sum(axis=1)
    two = (rng.random(len(ui)) < u["breadth"][ui]) & (second_f != first_f)
    r_user = np.concatenate([ui, ui[two]])
    r_day = np.concatenate([di, di[two]])
    r_feat = ws.features[np.minimum(np.concatenate([first_f, second_f[two]]), len(ws.features) - 1)]
    share = np.concatenate([np.ones(len(ui)), np.full(int(two.sum()), 0.4)])
    lam = (u["lam"][r_user] * days["calls"][r_day] * np.sqrt(fade_mult[r_user, r_day]) * spell[r_user, r_day]
           * share * (1.5 / FEATURE_PRICE[r_feat]) ** 0.8 * rng.gamma(20.0, 0.05, len(r_user)))
    r_calls = np.maximum(1, np.rint(lam)).astype(np.int64)

    err_rate = np.clip(u["err"][r_user] + 0.35 * days["severity"][r_day], 0, 0.9)
    r_err = rng.binomial(r_calls, err_rate)
    for cnt, is_err in ((r_calls - r_err, False), (r_err, True)):
        keep = cnt > 0
        feat, cnt = r_feat[keep], cnt[keep]
        price = FEATURE_PRICE[feat] * ws.price_mult * (ERROR_CREDIT_SHARE if is_err else 1.0)
        credits = cnt * price * rng.lognormal(0, 0.15, len(cnt))
        hour = np.searchsorted(ws.hours_cdf, rng.random(len(cnt)) * ws.hours_cdf[-1], side="right")
        sec = np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, len(cnt))
        rows.add(r_day[keep], sec, user0 + r_user[keep], -1, feat, credits, is_err, cnt)
    life = {"churn": churn, "churn_kind": np.where(churned, np.where(fade, "fade", "sudden"), None),
            "react_at": react_at}
    return active.sum(axis=0), life


# --- one workspace ------------------------------------------------------------------------------

def _simulate_workspace(plan: _Plan, w: int) -> tuple[tuple, dict]:
    """Simulate one workspace: event rows (UTC, windowed) and its ground truth."""
    rng = np.random.default_rng(np.random.SeedSequence(plan.seed, spawn_key=(1, w)))
    ws = _workspace_traits(rng, plan, w)
    days = _day_multipliers(rng, plan, ws)
    ag = _agent_traits(rng, plan, ws)
    days["severity"] = ag["severity"]
    days["exposure"] = lfilter([0.15], [1.0, -0.85], ag["severity"])  # lingering memory of incidents
    users = _user_traits(rng, plan, ws)
    n_users, n_days = len(users["p"]), plan.n_days
    rows = _Rows()
    dau = np.zeros(n_days)
    lives = []
    for lo in range(0, n_users, USER_BLOCK):
        block = {k: v[lo:lo + USER_BLOCK] for k, v in users.items()}
        block_dau, life = _user_block(rng, plan, ws, block, days, rows, int(plan.user_offset[w]) + lo)
        dau += block_dau
        lives.append(life)
    _agent_rows(rng, plan, ws, ag, dau, days["calls"], rows)
    spikes = _spike_rows(rng, plan, ws, rows)

    day, sec, user, agent, feat, credits, error, count = rows.columns()
    offset_s = int(round(ws.offset_hours * 3600))
    epoch0 = int(plan.dates[0].astype(np.int64))
    t_us = ((epoch0 + day) * 86400 + sec - offset_s) * 1_000_000
    lo_us = (epoch0 + 1) * 86400 * 1_000_000
    hi_us = (epoch0 + n_days - 1) * 86400 * 1_000_000
    keep = (t_us >= lo_us) & (t_us < hi_us)
    ws_col = np.full(int(keep.sum()), w, dtype=np.int64)
    event_cols = (t_us[keep], ws_col, user[keep], agent[keep], feat[keep], credits[keep], error[keep], count[keep])
    return event_cols, _ground_truth(plan, ws, users, lives, ag, spikes)


def _spike_rows(rng: np.random.Generator, plan: _Plan, ws: _Workspace, rows: _Rows) -> list[tuple[int, float]]:
    """Rare one-off batch jobs: a system row worth several typical days of credits."""
    n_spikes = rng.poisson(0.35 * plan.n_days / 365)
    daily = rows.daily_credits(plan.n_days)
    if n_spikes == 0 or not daily.any():
        return []
    first = max(ws.created_idx, 1)
    last = min(ws.end_idx, plan.n_days - 1)
    if last - first < 7:
        return []
    typical = daily[first:last].mean()
    day = rng.integers(first, last, n_spikes)
    credits = rng.uniform(1.5, 6.0, n_spikes) * typical
    batch = np.intersect1d(ws.features, BATCH_FEATURES)
    feat = rng.choice(batch if len(batch) else ws.features, n_spikes)
    count = np.maximum(1, np.round(credits / (FEATURE_PRICE[feat] * ws.price_mult))).astype(np.int64)
    rows.add(day, rng.integers(0, 6 * 3600, n_spikes), -1, -1, feat, credits, False, count)
    return list(zip(day.tolist(), credits.tolist()))


# --- ground truth and output -------------------------------------------------------------------

_STR, _F64, _DATE = pa.string(), pa.float64(), pa.date32()
TRUTH_SCHEMAS = {
    "workspaces": pa.schema([
        ("workspace_id", _STR), ("n_users", pa.int64()), ("n_agents", pa.int64()), ("timezone", _STR),
        ("utc_offset_hours", _F64), ("country", _STR), ("created_date", _DATE), ("ended_date", _DATE),
        ("trend_kind", _STR), ("growth_rate", _F64), ("level_shift_date", _DATE), ("level_shift_factor", _F64),
        ("weekly_strength", _F64), ("engagement", _F64), ("calls_per_active_day", _F64),
        ("price_multiplier", _F64), ("user_error_rate", _F64), ("features", _STR)]),
    "users": pa.schema([
        ("workspace_id", _STR), ("user_id", _STR), ("signup_date", _DATE), ("churn_date", _DATE),
        ("churn_kind", _STR), ("reactivation_date", _DATE), ("base_engagement", _F64),
        ("calls_per_active_day", _F64), ("preferred_feature", _STR), ("effective_features", _F64),
        ("feature_breadth", _F64), ("error_propensity", _F64), ("base_churn_hazard", _F64)]),
    "agents": pa.schema([
        ("workspace_id", _STR), ("agent_id", _STR), ("feature", _STR), ("base_error_rate", _F64),
        ("scheduled", pa.bool_()), ("start_date", _DATE), ("stop_date", _DATE)]),
    "incidents": pa.schema([
        ("workspace_id", _STR), ("agent_id", _STR), ("start_date", _DATE), ("peak_date", _DATE),
        ("end_date", _DATE), ("peak_error_rate", _F64)]),
    "spikes": pa.schema([("workspace_id", _STR), ("date", _DATE), ("credits", _F64)]),
}


def _ws_id(w: int) -> str:
    return f"ws-{w + 1:04d}"


def _ground_truth(plan: _Plan, ws: _Workspace, users: dict, lives: list[dict], ag: dict,
                  spikes: list[tuple[int, float]]) -> dict[str, pd.DataFrame]:
    """Ground-truth frames of one workspace (dates in its local calendar; NaT = none in the window)."""
    n_days, w = plan.n_days, ws.index

    def dates(idx, valid=True) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        return np.where(valid, plan.dates[0] + idx.astype("timedelta64[D]"), np.datetime64("NaT"))

    churn, react, kind = (np.concatenate([life[k] for life in lives]) for k in ("churn", "react_at", "churn_kind"))
    uid0, aid0 = int(plan.user_offset[w]), int(plan.agent_offset[w])
    users_df = pd.DataFrame({
        "workspace_id": _ws_id(w),
        "user_id": [f"u-{uid0 + i + 1:06d}" for i in range(len(churn))],
        "signup_date": dates(users["signup"]),
        "churn_date": dates(churn, churn < n_days),
        "churn_kind": kind,
        "reactivation_date": dates(react, react < n_days),
        "base_engagement": users["p"],
        "calls_per_active_day": users["lam"],
        "preferred_feature": np.array(FEATURES)[ws.features[users["prefs"].argmax(axis=1)]],
        "effective_features": users["eff_features"],
        "feature_breadth": users["breadth"],
        "error_propensity": users["err"],
        "base_churn_hazard": users["hazard"],
    })
    agent_ids = [f"ag-{aid0 + a + 1:05d}" for a in range(ag["n"])]
    agents_df = pd.DataFrame({
        "workspace_id": _ws_id(w), "agent_id": agent_ids, "feature": np.array(FEATURES)[ag["feature"]],
        "base_error_rate": ag["base_err"], "scheduled": ag["scheduled"],
        "start_date": dates(ag["start"], ag["start"] > 0), "stop_date": dates(ag["stop"], ag["stop"] < n_days),
    })
    inc = ag["incidents"]
    incidents_df = pd.DataFrame({
        "workspace_id": _ws_id(w), "agent_id": [agent_ids[i[0]] for i in inc],
        "start_date": dates([i[1] for i in inc]), "peak_date": dates([i[2] for i in inc]),
        "end_date": dates([i[3] for i in inc]), "peak_error_rate": [i[4] for i in inc],
    })
    spikes_df = pd.DataFrame({"workspace_id": _ws_id(w), "date": dates([s[0] for s in spikes]),
                              "credits": [s[1] for s in spikes]})
    zone = ZONES[ws.zone]
    workspace_df = pd.DataFrame([{
        "workspace_id": _ws_id(w), "n_users": len(churn), "n_agents": ag["n"], "timezone": zone[0],
        "utc_offset_hours": zone[1], "country": zone[2], "created_date": dates([ws.created_idx])[0],
        "ended_date": dates([ws.end_idx], ws.end_idx < n_days)[0], "trend_kind": ws.trend_kind,
        "growth_rate": ws.growth_rate,
        "level_shift_date": dates([ws.level_shift_idx or 0], ws.level_shift_idx is not None)[0],
        "level_shift_factor": ws.level_shift_factor, "weekly_strength": ws.weekly_strength,
        "engagement": ws.engagement, "calls_per_active_day": ws.calls_per_day, "price_multiplier": ws.price_mult,
        "user_error_rate": ws.user_error_rate, "features": ",".join(FEATURES[f] for f in ws.features),
    }])
    return {"workspaces": workspace_df, "users": users_df, "agents": agents_df, "incidents": incidents_df,
            "spikes": spikes_df}


def _events_table(plan: _Plan, chunk: range, parts: list[tuple]) -> pa.Table:
    """Build the contract table of one chunk, sorted by workspace and event time."""
    t_us, ws, user, agent, feat, credits, error, count = (np.concatenate(c) for c in zip(*parts))
    order = np.lexsort((t_us, ws))
    t_us, ws, user, agent, feat, credits, error, count = (
        c[order] for c in (t_us, ws, user, agent, feat, credits, error, count))
    u_lo = int(plan.user_offset[chunk.start])
    u_hi = u_lo + int(plan.sizes[chunk.start:chunk.stop].sum())
    a_lo = int(plan.agent_offset[chunk.start])
    a_hi = a_lo + int(plan.agent_counts[chunk.start:chunk.stop].sum())
    ws_names = pa.array([_ws_id(w) for w in chunk])
    user_names = pa.array([f"u-{i + 1:06d}" for i in range(u_lo, u_hi)], pa.string())
    agent_names = pa.array([f"ag-{i + 1:05d}" for i in range(a_lo, a_hi)], pa.string())
    return pa.table([
        pa.array(t_us, pa.timestamp("us", tz="UTC")),
        ws_names.take(pa.array(ws - chunk.start)),
        user_names.take(pa.array(user - u_lo, mask=user < 0)),
        agent_names.take(pa.array(agent - a_lo, mask=agent < 0)),
        pa.array(FEATURES).take(pa.array(feat)),
        pa.array(credits, pa.float64()),
        pa.array(["ok", "error"]).take(pa.array(error.astype(np.int8))),
        pa.array(count, pa.int32()),
    ], schema=EVENT_SCHEMA)
