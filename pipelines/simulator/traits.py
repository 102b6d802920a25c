"""Static draws of the simulated platform: the feature price list and time zones, platform-wide
sizes and outages, and per-workspace traits, calendar multipliers, agents and users.

Each function takes the generator it draws from; the draw order is part of the output, so moving
or reordering draws changes every generated file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import holidays
import numpy as np
from scipy.signal import lfilter

FEATURES = ("chat", "search", "code_assist", "data_analysis", "image_gen", "api", "automation")
FEATURE_PRICE = np.array([1.0, 0.5, 1.5, 2.5, 4.0, 0.4, 1.2])  # mean credits per call
FEATURE_POPULARITY = np.array([0.95, 0.7, 0.55, 0.45, 0.3, 0.4, 0.35])  # chance a workspace uses it
AGENT_AFFINITY = np.array([1.0, 1.0, 1.5, 2.0, 0.5, 3.0, 3.0])  # features agents lean towards

# (label, UTC offset in hours, holiday country, share of workspaces)
ZONES = (
    ("UTC-08:00", -8.0, "US", 0.17),
    ("UTC-05:00", -5.0, "US", 0.23),
    ("UTC+00:00", 0.0, "GB", 0.12),
    ("UTC+01:00", 1.0, "DE", 0.14),
    ("UTC+05:30", 5.5, "IN", 0.12),
    ("UTC+08:00", 8.0, "SG", 0.10),
    ("UTC+09:00", 9.0, "JP", 0.12),
)
TREND_KINDS = ("growth", "flat", "decline", "saturating")

# Relative call volume by local hour: office hours vs. all-week usage.
_BUSINESS_HOURS = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3.5, 5.5, 6.5, 6.5,
                            4.5, 5.5, 6.5, 6.0, 5.0, 3.5, 2.0, 1.5, 1.2, 1.0, 0.6, 0.3])
_ALLDAY_HOURS = np.array([0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.7, 1.5, 2.5, 3.5, 4.0, 4.2,
                          4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.2, 4.5, 4.5, 4.0, 3.0, 1.8])


@dataclass
class _Plan:
    """Platform-wide draws, shared by all chunks."""

    seed: int
    dates: np.ndarray  # simulated local days, start - 1 .. end + 1 (datetime64[D])
    dow: np.ndarray  # day of week of each simulated day, Monday = 0
    sizes: np.ndarray  # users per workspace
    agent_counts: np.ndarray
    user_offset: np.ndarray  # global index of each workspace's first user
    agent_offset: np.ndarray
    outage: np.ndarray  # bool per simulated day: platform-wide degraded service

    @property
    def n_days(self) -> int:
        return len(self.dates)


@dataclass
class _Workspace:
    """Per-workspace traits; most of them are written to ``ground_truth/workspaces.parquet``."""

    index: int
    zone: int
    created_idx: int  # simulated-day index of creation; <= 0 means before the window
    end_idx: int  # day the workspace cancelled (all users leave); n_days if never
    trend_kind: str
    growth_rate: float  # annual log growth of call intensity
    weekly_strength: float  # 0: same every day, 1: nothing at weekends
    engagement: float  # mean user activity probability on a working day
    calls_per_day: float
    features: np.ndarray  # feature codes this workspace uses
    feature_weights: np.ndarray
    price_mult: float
    user_error_rate: float
    level_shift_idx: int | None
    level_shift_factor: float
    initial_share: float  # users already signed up before the window
    hazard_mult: float
    hours_cdf: np.ndarray  # local-hour distribution of user calls
    block_weights: np.ndarray  # the same in 6-hour blocks

    @property
    def offset_hours(self) -> float:
        return ZONES[self.zone][1]



def _plan_platform(n_workspaces: int, start: date, end: date, seed: int, users_per_workspace: float) -> _Plan:
    """Platform-wide draws: lognormal workspace sizes rescaled to the requested mean, agent counts
    growing with size, global id offsets and platform outage days."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    raw = rng.lognormal(0.0, 1.2, n_workspaces)
    sizes = np.maximum(1, np.round(raw * users_per_workspace / raw.mean())).astype(np.int64)
    agent_counts = np.minimum(40, rng.poisson(0.12 * sizes ** 0.6))
    dates = np.arange(np.datetime64(start) - 1, np.datetime64(end) + 2)
    outage = np.zeros(len(dates), dtype=bool)
    n_out = rng.poisson(1.5 * len(dates) / 365)
    outage[rng.integers(1, len(dates) - 1, n_out)] = True
    return _Plan(seed=seed, dates=dates, dow=(dates.astype(np.int64) + 3) % 7,
                 sizes=sizes, agent_counts=agent_counts, user_offset=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
                 agent_offset=np.concatenate([[0], np.cumsum(agent_counts)[:-1]]), outage=outage)


def _workspace_traits(rng: np.random.Generator, plan: _Plan, w: int) -> _Workspace:
    """Draw a workspace's time zone, lifetime, trend, weekly strength, feature mix and rates."""
    n_days = plan.n_days
    zone = int(rng.choice(len(ZONES), p=[z[3] for z in ZONES]))
    if n_days > 60 and rng.random() < 0.15:
        created_idx = int(rng.integers(1, n_days - 14))
    else:
        created_idx = -int(rng.integers(30, 1500))
    first = max(created_idx, 0)
    end_idx = n_days
    if n_days > 120 and rng.random() < 0.04 and first + 60 < n_days - 10:
        end_idx = int(rng.integers(max(first + 60, n_days // 2), n_days - 10))

    kind = TREND_KINDS[rng.choice(4, p=[0.35, 0.3, 0.15, 0.2])]
    growth = {"growth": rng.uniform(0.1, 0.8), "flat": rng.normal(0.0, 0.05),
              "decline": -rng.uniform(0.15, 0.8), "saturating": rng.uniform(0.3, 1.2)}[kind]
    weekly = rng.uniform(0.5, 0.9) if rng.random() < 0.6 else rng.uniform(0.0, 0.4)

    used = rng.random(len(FEATURES)) < FEATURE_POPULARITY
    used[rng.integers(len(FEATURES))] = True
    features = np.flatnonzero(used)
    hours = (weekly * _BUSINESS_HOURS / _BUSINESS_HOURS.sum()
             + (1 - weekly) * _ALLDAY_HOURS / _ALLDAY_HOURS.sum()) * rng.lognormal(0, 0.15, 24)
    hours = np.roll(hours, int(rng.integers(-1, 2)))
    hours /= hours.sum()

    shift_idx, shift_factor = None, 1.0
    shift_lo, shift_hi = max(first + 14, int(0.15 * n_days)), int(0.9 * n_days)
    if shift_lo < shift_hi and rng.random() < 0.3:
        shift_idx = int(rng.integers(shift_lo, shift_hi))
        shift_factor = float(np.clip(rng.lognormal(0, 0.5), 0.35, 3.0))
    size = plan.sizes[w]
    size_hazard = 1.6 if size <= 3 else 1.3 if size <= 10 else 1.0 if size <= 100 else 0.8
    trend_hazard = {"growth": 0.8, "flat": 1.0, "decline": 1.6, "saturating": 0.9}[kind]
    initial = {"growth": (0.3, 0.6), "flat": (0.6, 0.85), "decline": (0.85, 0.97), "saturating": (0.2, 0.5)}[kind]
    return _Workspace(
        index=w, zone=zone, created_idx=created_idx, end_idx=end_idx,
        trend_kind=kind, growth_rate=float(growth), weekly_strength=float(weekly),
        engagement=float(rng.beta(4.0, 5.0)), calls_per_day=float(rng.lognormal(np.log(6), 0.4)),
        features=features, feature_weights=rng.dirichlet(np.full(len(features), 0.8)),
        price_mult=float(rng.lognormal(0, 0.3)),
        user_error_rate=float(np.exp(rng.uniform(np.log(0.001), np.log(0.01)))),
        level_shift_idx=shift_idx, level_shift_factor=shift_factor, initial_share=float(rng.uniform(*initial)),
        hazard_mult=size_hazard * trend_hazard, hours_cdf=np.cumsum(hours),
        block_weights=hours.reshape(4, 6).sum(1),
    )


@lru_cache(maxsize=None)
def _holiday_dates(country: str, first_year: int, last_year: int) -> np.ndarray:
    days = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return np.array(sorted(days), dtype="datetime64[D]")


def _day_multipliers(rng: np.random.Generator, plan: _Plan, ws: _Workspace) -> dict[str, np.ndarray]:
    """Workspace-level multipliers of user activity probability (by weekday, and by calendar day for
    holidays, August, year end and outages) and of calls per active day (trend, level shift, noise)."""
    n_days, dates, dow = plan.n_days, plan.dates, plan.dow
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    s = ws.weekly_strength
    weekend = 1 - 0.92 * s
    by_dow = np.array([1.0, 1.04 + 0.05 * s, 1.04 + 0.05 * s, 1.0, 1.0 - 0.12 * s, weekend, weekend])
    calendar = np.ones(n_days)
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    hol = np.isin(dates, _holiday_dates(ZONES[ws.zone][2], int(years[0]), int(years[-1])))
    calendar[hol] = np.minimum(1.0, weekend / by_dow[dow[hol]])
    europe = ZONES[ws.zone][2] in ("GB", "DE")
    western = ZONES[ws.zone][2] in ("US", "GB", "DE")
    aug = rng.uniform(0.1, 0.35) if europe else rng.uniform(0.0, 0.15)
    dec = rng.uniform(0.2, 0.6) if western else rng.uniform(0.05, 0.3)
    dist_dec = np.minimum(np.abs(doy - 361), np.abs(doy + 365 - 361))  # days from Dec 28
    calendar *= 1 - aug * np.clip(1 - np.abs(doy - 226) / 25, 0, 1)
    calendar *= 1 - dec * np.clip((10 - dist_dec) / 5, 0, 1)
    calendar[plan.outage] *= 0.3

    t = (np.arange(n_days) - 1) / 365.0
    g = ws.growth_rate
    log_trend = g * 0.8 * (1 - np.exp(-t / 0.8)) if ws.trend_kind == "saturating" else 0.5 * g * t
    phi = rng.uniform(0.3, 0.7)
    noise = lfilter([1.0], [1.0, -phi], rng.normal(0, rng.uniform(0.02, 0.12) * math.sqrt(1 - phi**2), n_days))
    wander = lfilter([1.0], [1.0, -0.995], rng.normal(0, rng.uniform(0.005, 0.02), n_days))
    calls = np.exp(log_trend + noise + wander)
    if ws.level_shift_idx is not None:
        calls[ws.level_shift_idx:] *= ws.level_shift_factor
    return {"by_dow": by_dow, "calendar": calendar, "calls": calls}



def _agent_traits(rng: np.random.Generator, plan: _Plan, ws: _Workspace) -> dict:
    """Agents of a workspace with their daily error-rate curves and incidents."""
    n, n_days = int(plan.agent_counts[ws.index]), plan.n_days
    first = max(ws.created_idx, 0)
    weights = ws.feature_weights * AGENT_AFFINITY[ws.features]
    feature = ws.features[rng.choice(len(ws.features), n, p=weights / weights.sum())]
    base_err = np.exp(rng.uniform(np.log(0.005), np.log(0.05), n))
    scheduled = rng.random(n) < 0.3
    late = rng.random(n) < 0.5
    start = np.where(late, rng.integers(first, max(first + 1, n_days - 30), n), first)
    retire = rng.random(n) < 0.1
    stop = np.where(retire, start + rng.integers(30, max(31, n_days), n), n_days)
    stop = np.minimum(stop, ws.end_idx)

    d = np.arange(n_days)
    err = np.repeat(base_err[:, None], n_days, axis=1)
    incidents = []
    n_inc = np.minimum(4, rng.poisson(0.9 * n_days / 365, n))
    for a in range(n):
        for _ in range(n_inc[a]):
            if stop[a] - start[a] < 20:
                break
            s0 = int(rng.integers(max(start[a], 1), stop[a] - 1))
            ramp, resolve = int(rng.integers(3, 11)), int(rng.integers(1, 5))
            peak_rate = rng.uniform(0.2, 0.6)
            x = d - s0
            shape = np.where((x >= 0) & (x <= ramp), ((x + 1) / (ramp + 1)) ** 2, 0.0)
            shape = np.where((x > ramp) & (x <= ramp + resolve), 1 - (x - ramp) / (resolve + 1), shape)
            err[a] = np.maximum(err[a], base_err[a] + (peak_rate - base_err[a]) * shape)
            incidents.append((a, s0, s0 + ramp, s0 + ramp + resolve, peak_rate))
    err[:, plan.outage] = np.minimum(0.9, err[:, plan.outage] + 0.15)
    severity = (err - base_err[:, None]).max(axis=0) if n else np.zeros(n_days)
    return {"n": n, "feature": feature, "base_err": base_err, "scheduled": scheduled, "start": start,
            "stop": stop, "err": err, "incidents": incidents, "severity": severity,
            "rate_noise": rng.lognormal(0, 0.7, n),
            "blocks": np.where(scheduled[:, None], rng.dirichlet(np.full(4, 3.0), n), ws.block_weights)}



def _user_traits(rng: np.random.Generator, plan: _Plan, ws: _Workspace) -> dict:
    """Static per-user draws, ordered by signup."""
    n_users, n_days = int(plan.sizes[ws.index]), plan.n_days
    first = max(ws.created_idx, 1)
    if ws.created_idx <= 0:
        n_pre = rng.binomial(n_users, ws.initial_share)
        founders = 0
    else:
        n_pre = 0
        founders = max(1, rng.binomial(n_users, 0.3))
    t = (np.arange(first, min(ws.end_idx, n_days - 1)) - 1) / 365.0  # no signups after cancellation
    if ws.trend_kind == "growth":
        density = np.exp(ws.growth_rate * t)
    elif ws.trend_kind == "saturating":
        density = np.exp(-t / 0.5)
    else:
        density = np.ones_like(t)
    cdf = np.cumsum(density)
    later = first + np.searchsorted(cdf, rng.random(n_users - n_pre - founders) * cdf[-1])
    signup = np.sort(np.concatenate([
        -rng.integers(0, max(1, -ws.created_idx), n_pre),  # before the window: tenure at its start
        first + rng.integers(0, min(14, n_days - 1 - first), founders),
        later,
    ]))

    p = np.clip(rng.beta(ws.engagement * 5, (1 - ws.engagement) * 5, n_users), 0.01, 0.95)
    prefs = rng.dirichlet(ws.feature_weights + 0.02, n_users)
    breadth = rng.beta(1.0, 8.0, n_users)  # chance of using a second feature on an active day
    eff_features = 1.0 / (prefs**2).sum(axis=1)
    err = ws.user_error_rate * rng.lognormal(0, 0.5, n_users)
    # base daily churn hazard: low engagement, narrow feature use, error-prone usage and a small or
    # declining workspace raise it (tenure and incident exposure are applied day by day)
    hazard = (2e-3 * ws.hazard_mult * (0.3 / (p + 0.05)) ** 0.5 * np.exp(-0.35 * (eff_features - 1.5))
              * (1.3 - breadth) * np.sqrt(err / 0.008))
    # quiet spells that are not churn: up to 4 vacations (4-14 days) and 2 long breaks (20-90 days)
    years = n_days / 365
    n_quiet = np.column_stack([np.minimum(4, rng.poisson(1.2 * years, n_users)),
                               np.minimum(2, rng.poisson(0.5 * years, n_users))])
    slot_kind = np.array([0, 0, 0, 0, 1, 1])
    slot_rank = np.array([0, 1, 2, 3, 0, 1])
    vac_start = rng.integers(0, n_days, (n_users, 6))
    vac_start[slot_rank >= n_quiet[:, slot_kind]] = n_days
    length = np.where(slot_kind == 0, rng.integers(4, 15, (n_users, 6)), rng.integers(20, 91, (n_users, 6)))
    vac_end = vac_start + length
    return {
        "signup": signup, "p": p, "lam": ws.calls_per_day * rng.lognormal(0, 0.5, n_users),
        "prefs": prefs, "breadth": breadth, "eff_features": eff_features,
        "err": err, "hazard": hazard, "threshold": rng.exponential(1.0, n_users),
        "regularity": rng.beta(4.0, 2.0, n_users) * np.minimum(1.0, p / 0.3),  # casual users are irregular
        "routine": rng.random((n_users, 7)),
        "fade": rng.random(n_users) < 0.65, "fade_len": rng.integers(14, 43, n_users),
        "react": rng.random(n_users) < 0.25,
        "react_gap": np.clip(rng.lognormal(np.log(45), 0.6, n_users), 14, 300).astype(np.int64),
        "react_p": p * rng.uniform(0.5, 1.0, n_users), "vac_start": vac_start, "vac_end": vac_end,
    }
