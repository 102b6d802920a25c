"""Thresholds and breaches, from the observed data only (no ground truth): what the model learns to foresee.

Threshold of an agent on day ``t``: ``min(ceiling, max(multiplier × baseline, baseline + min_excess))``, or an
override (an absolute rate, or a multiplier of its own) set per agent.

A **breach** is confirmed on day ``d`` when the agent's error rate is at or above its threshold on ``d`` and
on its previous day with calls (within ``max_gap_days``), with at least ``min_errors`` failed calls over the
two days, and so many that the baseline rate would produce them with probability below ``alpha`` (binomial
tail). Two days, because a platform-wide outage or a noisy day lifts one day only; ``min_errors`` and
``alpha``, because two failures out of ten calls of an agent that usually fails 5% is bad luck, not an
incident. The **breach date** of a warning is the day the breach is
confirmed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.error_rates.panel import AgentPanel


@dataclass(frozen=True)
class ThresholdPolicy:
    multiplier: float = 3.0
    min_excess: float = 0.05
    ceiling: float = 0.5
    min_errors: int = 3
    max_gap_days: int = 3
    alpha: float = 1e-3

    def __post_init__(self):
        if self.multiplier < 1 or not 0 < self.ceiling <= 1 or self.min_excess < 0:
            raise ValueError("threshold policy: multiplier must be >= 1, ceiling in (0, 1] and min_excess >= 0, got "
                             f"{self.multiplier}, {self.ceiling}, {self.min_excess}")


def thresholds(baseline: np.ndarray, policy: ThresholdPolicy, override_rate: np.ndarray | None = None,
               override_multiplier: np.ndarray | None = None) -> np.ndarray:
    """Per agent and day (``baseline`` is ``(A, D)``); overrides are ``(A,)`` with NaN where there is none."""
    mult = np.full(baseline.shape[0], policy.multiplier)
    if override_multiplier is not None:
        mult = np.where(np.isfinite(override_multiplier), override_multiplier, mult)
    thr = np.minimum(policy.ceiling, np.maximum(baseline * mult[:, None], baseline + policy.min_excess))
    if override_rate is not None:
        thr = np.where(np.isfinite(override_rate)[:, None], np.asarray(override_rate)[:, None], thr)
    return np.clip(thr, 1e-4, 1.0)


@dataclass
class Breaches:
    """``above``: the day's rate reached the threshold (days with calls); ``breach``: a breach is confirmed
    that day; ``start``: the first confirmed day of a run of breach days."""

    above: np.ndarray
    breach: np.ndarray
    start: np.ndarray


def find_breaches(panel: AgentPanel, thr: np.ndarray, policy: ThresholdPolicy, baseline: np.ndarray) -> Breaches:
    """Breaches of every agent and day given thresholds and baselines (both ``(A, D)``)."""
    from scipy.stats import binom

    calls, errors = panel.calls, panel.errors
    a, d = calls.shape
    active = calls > 0
    above = active & (errors >= thr * calls)
    breach = np.zeros((a, d), dtype=bool)
    prev_above, prev_err, prev_calls = np.zeros(a, dtype=bool), np.zeros(a), np.zeros(a)
    prev_age = np.full(a, 10**6)
    for t in range(d):
        recent = prev_age <= policy.max_gap_days
        cand = above[:, t] & prev_above & recent & (errors[:, t] + prev_err >= policy.min_errors)
        if cand.any():
            e2, n2 = errors[cand, t] + prev_err[cand], calls[cand, t] + prev_calls[cand]
            cand[cand] = binom.sf(e2 - 1, n2, np.clip(baseline[cand, t], 1e-6, 1)) < policy.alpha
        breach[:, t] = cand
        act = active[:, t]
        prev_above = np.where(act, above[:, t], prev_above)
        prev_err = np.where(act, errors[:, t], prev_err)
        prev_calls = np.where(act, calls[:, t], prev_calls)
        prev_age = np.where(act, 1, prev_age + 1)
    start = breach.copy()
    start[:, 1:] &= ~breach[:, :-1]
    return Breaches(above=above, breach=breach, start=start)


def future_breach(breach: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """For each agent and day ``t``: 1.0 if a breach is confirmed in ``(t, t + horizon]`` (NaN when that window
    runs past the panel), and the days until the first one (NaN when none)."""
    a, d = breach.shape
    label = np.full((a, d), np.nan)
    days = np.full((a, d), np.nan)
    nxt = np.full(a, np.inf)  # column of the next breach after t
    for t in range(d - 1, -1, -1):
        if t + 1 < d:
            nxt = np.where(breach[:, t + 1], t + 1, nxt)
        wait = nxt - t
        if t + horizon <= d - 1:
            label[:, t] = (wait <= horizon).astype(float)
        days[:, t] = np.where(wait <= horizon, wait, np.nan)
    return label, days


def breach_history(br: Breaches, lookback: int = 90, cap: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Days since the last confirmed breach day (``cap`` when none) and breach runs started in ``lookback`` days."""
    a, d = br.breach.shape
    since = np.full((a, d), float(cap))
    last = np.full(a, -np.inf)
    for t in range(d):
        last = np.where(br.breach[:, t], t, last)
        since[:, t] = np.minimum(cap, t - last)
    c = np.concatenate([np.zeros((a, 1)), np.cumsum(br.start, axis=1)], axis=1)
    idx = np.arange(d)
    count = c[:, idx + 1] - c[:, np.clip(idx + 1 - lookback, 0, d)]
    return since, count
