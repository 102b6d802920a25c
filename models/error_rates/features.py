"""What an escalation looks like, as numbers per agent and day (all from columns ``<= t``).

Rates are compared with the agent's baseline on the logit scale, after shrinking each window's rate toward
the baseline with ``SMOOTHING_CALLS`` pseudo-calls: two failures out of three calls is weak evidence, two
hundred out of six hundred is strong, and both read right. ``FEATURES`` are the threshold-free columns (the
``agent_daily`` feature set stores them); :func:`threshold_features` adds the ones that depend on the agent's
threshold, which an operator may override.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from models.error_rates.baseline import Baseline
from models.error_rates.breaches import Breaches, breach_history
from models.error_rates.panel import AgentPanel, logit, rolling_sum, shift

SMOOTHING_CALLS = 5.0
PLATFORM_MIN_CALLS = 10  # agents with fewer calls that day do not count in the platform-wide shares

FEATURES: dict[str, str] = {
    "calls_t": "calls on T",
    "errors_t": "failed calls on T",
    "error_rate_t": "failed / calls on T (0 without calls)",
    "calls_7": "calls in the 7 days to T",
    "errors_7": "failed calls in the 7 days to T",
    "calls_28": "calls in the 28 days to T",
    "log_calls_7": "log(1 + mean daily calls over 7 days)",
    "log_calls_28": "log(1 + mean daily calls over 28 days)",
    "calls_trend": "log of mean daily calls, 7 days vs 28 days (smoothed)",
    "active_days_7": "days with calls in the 7 days to T",
    "active_days_28": "days with calls in the 28 days to T",
    "days_since_call": "days since the last day with calls (0: calls on T)",
    "age_days": "days since the agent's first call (at most 365)",
    "baseline_rate": "baseline error rate (days T-62..T-7, incidents capped, shrunk to workspace x feature)",
    "prior_rate": "the workspace x feature rate the baseline is shrunk toward",
    "baseline_vs_prior": "logit(baseline) - logit(prior): the agent against its peers",
    "baseline_log_calls": "log(1 + calls in the baseline window)",
    "rate_3": "error rate over 3 days, shrunk toward the baseline",
    "rate_7": "error rate over 7 days, shrunk toward the baseline",
    "excess_1": "logit(rate on T, shrunk) - logit(baseline)",
    "excess_3": "logit(rate_3) - logit(baseline)",
    "excess_7": "logit(rate_7) - logit(baseline)",
    "z_1": "(errors - calls x baseline) / binomial sd, on T",
    "z_3": "the same over 3 days",
    "z_7": "the same over 7 days",
    "z_1_prev": "z_1 of the previous day",
    "z_2": "the same over 2 days",
    "elevated_both": "min(z_1, z_1_prev): both of the last two days elevated",
    "trend_3": "excess_3 minus excess_3 three days earlier",
    "rate_trend_per_day": "change of rate_3 per day over the last three days",
    "accel_3": "change of trend_3 over three days (acceleration)",
    "slope_7": "least-squares slope of the daily excess over 7 days, weighted by calls",
    "elevated_days": "consecutive days with calls and z_1 > 2, up to T",
    "calls_at_risk_3": "failed calls above the baseline's expectation over 3 days",
    "user_fail_share_3": "share of the agent's users with a failed call over 3 days (0 without user ids)",
    "ws_fail_share_1": "share of the workspace's active users with a failed call on T",
    "ws_fail_share_3": "the same over 3 days (user-days)",
    "ws_fail_excess": "logit(ws_fail_share_3, shrunk with 5 user-days) - logit(its share over days T-34..T-7)",
    "ws_fail_excess_1": "the same for T alone",
    "ws_fail_trend": "ws_fail_excess_1 minus its value three days earlier",
    "ws_other_agents_elevated": "share of the workspace's other agents with z_3 > 3",
    "platform_elevated_1": "share of all agents (>= 10 calls) with z_1 > 3 on T: platform-wide trouble",
    "platform_elevated_3": "share of all agents (>= 10 calls over 3 days) with z_3 > 3",
}
THRESHOLD_FEATURES: dict[str, str] = {
    "threshold_gap_3": "logit(threshold) - logit(rate_3): how far the rate is from the threshold",
    "threshold_gap_1": "logit(threshold) - logit(rate on T, shrunk)",
    "above_t": "the rate on T reached the threshold",
    "days_since_breach": "days since the last breach day (180: none)",
    "breaches_90": "breaches started in the last 90 days",
}
MODEL_FEATURES = [c for c in FEATURES if c not in ("calls_t", "errors_t", "error_rate_t", "calls_7", "errors_7",
                                                   "calls_28", "baseline_rate", "prior_rate")] + \
    [c for c in THRESHOLD_FEATURES if c != "above_t"]


def _smoothed(e: np.ndarray, n: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (e + SMOOTHING_CALLS * b) / (n + SMOOTHING_CALLS)


def _z(e: np.ndarray, n: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((e - n * b) / np.sqrt(n * b * (1 - b) + 1e-9), -10, 50)


def _weighted_slope(y: np.ndarray, w: np.ndarray, days: int = 7) -> np.ndarray:
    xs = np.arange(days, dtype=float) - (days - 1)
    ys = np.stack([shift(y, days - 1 - j) for j in range(days)])  # (days, A, D): day t-6 .. t
    ws = np.stack([shift(w, days - 1 - j) for j in range(days)])
    sw = ws.sum(axis=0)
    safe = np.maximum(sw, 1e-9)
    xbar = (ws * xs[:, None, None]).sum(axis=0) / safe
    ybar = (ws * ys).sum(axis=0) / safe
    dx = xs[:, None, None] - xbar
    num = (ws * dx * (ys - ybar)).sum(axis=0)
    den = (ws * dx**2).sum(axis=0)
    return np.where((den > 1e-6) & (sw > 1.0), num / np.maximum(den, 1e-9), 0.0)


def _run_length(flag: np.ndarray, active: np.ndarray) -> np.ndarray:
    out = np.zeros(flag.shape)
    run = np.zeros(flag.shape[0])
    for t in range(flag.shape[1]):
        run = np.where(active[:, t], np.where(flag[:, t], run + 1, 0), run)
        out[:, t] = run
    return out


def _group_share(flag: np.ndarray, eligible: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Share of eligible rows flagged per column, over all rows (``groups`` None) or the row's other group members."""
    f, e = (flag & eligible).astype(float), eligible.astype(float)
    if groups is None:
        return np.broadcast_to(f.sum(axis=0) / np.maximum(e.sum(axis=0), 1), flag.shape).copy()
    _, code = np.unique(groups.astype(str), return_inverse=True)
    fs, es = np.zeros((code.max() + 1, flag.shape[1])), np.zeros((code.max() + 1, flag.shape[1]))
    np.add.at(fs, code, f)
    np.add.at(es, code, e)
    return (fs[code] - f) / np.maximum(es[code] - e, 1)


def daily_features(panel: AgentPanel, base: Baseline) -> dict[str, np.ndarray]:
    """Every column of ``FEATURES`` for every agent and day of the panel, ``(A, D)`` arrays."""
    n, e, b = panel.calls, panel.errors, base.rate
    active = n > 0
    f: dict[str, np.ndarray] = {"calls_t": n, "errors_t": e, "error_rate_t": np.where(active, e / np.maximum(n, 1), 0)}
    sums = {w: (rolling_sum(n, w), rolling_sum(e, w)) for w in (1, 2, 3, 7, 28)}
    f["calls_7"], f["errors_7"], f["calls_28"] = sums[7][0], sums[7][1], sums[28][0]
    f["log_calls_7"] = np.log1p(sums[7][0] / 7)
    f["log_calls_28"] = np.log1p(sums[28][0] / 28)
    f["calls_trend"] = np.log((sums[7][0] / 7 + 1) / (sums[28][0] / 28 + 1))
    f["active_days_7"] = rolling_sum(active.astype(float), 7)
    f["active_days_28"] = rolling_sum(active.astype(float), 28)
    last = np.full(panel.n_agents, -10**6, dtype=float)
    since = np.zeros(n.shape)
    for t in range(panel.n_days):
        last = np.where(active[:, t], t, last)
        since[:, t] = np.minimum(365, t - last)
    f["days_since_call"] = since
    f["age_days"] = np.clip(np.arange(panel.n_days)[None, :] - panel.first_day[:, None], 0, 365).astype(float)
    f["baseline_rate"], f["prior_rate"] = b, base.prior
    f["baseline_vs_prior"] = logit(b) - logit(base.prior)
    f["baseline_log_calls"] = np.log1p(base.calls)
    lb = logit(b)
    for w in (1, 3, 7):
        nw, ew = sums[w]
        rate = _smoothed(ew, nw, b)
        if w > 1:
            f[f"rate_{w}"] = rate
        f[f"excess_{w}"] = logit(rate) - lb
        f[f"z_{w}"] = _z(ew, nw, b)
    f["z_2"] = _z(*sums[2][::-1], b)
    f["z_1_prev"] = shift(f["z_1"], 1)
    f["elevated_both"] = np.minimum(f["z_1"], f["z_1_prev"])
    f["trend_3"] = f["excess_3"] - shift(f["excess_3"], 3)
    f["accel_3"] = f["trend_3"] - shift(f["trend_3"], 3)
    f["rate_trend_per_day"] = (f["rate_3"] - shift(f["rate_3"], 3)) / 3
    f["slope_7"] = _weighted_slope(f["excess_1"], n / (n + SMOOTHING_CALLS))
    f["elevated_days"] = _run_length(f["z_1"] > 2, active)
    f["calls_at_risk_3"] = np.maximum(sums[3][1] - sums[3][0] * b, 0)
    f["user_fail_share_3"] = rolling_sum(panel.error_users, 3) / np.maximum(rolling_sum(panel.users, 3), 1)
    wa, we = panel.ws_active_users, panel.ws_error_users
    f["ws_fail_share_1"] = we / np.maximum(wa, 1)
    a3, e3 = rolling_sum(wa, 3), rolling_sum(we, 3)
    f["ws_fail_share_3"] = e3 / np.maximum(a3, 1)
    a28, e28 = rolling_sum(wa, 28, lag=7), rolling_sum(we, 28, lag=7)
    base_share = (e28 + 0.5) / (a28 + 1)
    f["ws_fail_excess"] = logit((e3 + 5 * base_share) / (a3 + 5)) - logit(base_share)
    f["ws_fail_excess_1"] = logit((we + 5 * base_share) / (wa + 5)) - logit(base_share)
    f["ws_fail_trend"] = f["ws_fail_excess_1"] - shift(f["ws_fail_excess_1"], 3)
    f["ws_other_agents_elevated"] = _group_share(f["z_3"] > 3, sums[3][0] >= PLATFORM_MIN_CALLS, panel.workspace_id)
    f["platform_elevated_1"] = _group_share(f["z_1"] > 3, n >= PLATFORM_MIN_CALLS, None)
    f["platform_elevated_3"] = _group_share(f["z_3"] > 3, sums[3][0] >= PLATFORM_MIN_CALLS, None)
    return {k: f[k] for k in FEATURES}


def threshold_features(feats: dict[str, np.ndarray], thr: np.ndarray, br: Breaches) -> dict[str, np.ndarray]:
    """``THRESHOLD_FEATURES`` given the thresholds and the breaches found with them."""
    lt = logit(thr)
    rate_1 = _smoothed(feats["errors_t"], feats["calls_t"], feats["baseline_rate"])
    since, count = breach_history(br)
    return {"threshold_gap_3": lt - logit(feats["rate_3"]), "threshold_gap_1": lt - logit(rate_1),
            "above_t": br.above.astype(float), "days_since_breach": since, "breaches_90": count}


def frame_at(panel: AgentPanel, arrays: dict[str, np.ndarray], columns: np.ndarray | int,
             rows: np.ndarray | None = None) -> pd.DataFrame:
    """Long frame of ``arrays`` at panel ``columns`` (one int, or an array of them) for ``rows`` (default: all),
    with ``workspace_id``, ``agent_id``, ``feature`` and ``day``."""
    cols = np.atleast_1d(columns)
    rows = np.arange(panel.n_agents) if rows is None else np.asarray(rows)
    rr, cc = np.repeat(rows, len(cols)), np.tile(cols, len(rows))
    out = pd.DataFrame({"workspace_id": panel.workspace_id[rr], "agent_id": panel.agent_id[rr],
                        "feature": panel.feature[rr], "day": panel.start + pd.to_timedelta(cc, unit="D")})
    for k, v in arrays.items():
        out[k] = v[rr, cc]
    return out
