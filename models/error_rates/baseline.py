"""Each agent's baseline error rate per day, shrunk toward its workspace and feature (empirical Bayes).

For day ``t`` the baseline uses the ``window_days`` days ending ``gap_days`` before ``t`` (a problem building
up over the last week does not raise the bar it is judged against). Past incidents and platform outages are
winsorised: a first, raw estimate of the window's rate caps each day's errors at what that rate makes
plausible (its expectation plus ``cap_sigmas`` binomial standard deviations plus one), the baseline is
computed from the capped counts, and the capping is repeated from it (``cap_passes``), so an incident barely moves it while a lasting change of level is absorbed within the
window. The baseline of day ``t`` depends on days ``t - gap - window + 1 .. t - gap`` only, whatever the
panel's start (the feature store and the training snapshots agree).

Shrinkage, a three-level hierarchy of pooled rates, all from the same window:

* global: all agents' errors / calls;
* feature: the agents of the same feature/service, pulled toward the global rate with
  ``feature_strength`` pseudo-calls;
* workspace: a rate ratio (observed / expected errors of the workspace's *other* agents, expected from
  their features' rates) pulled toward 1 with ``workspace_strength`` pseudo-errors (gamma-Poisson).

The agent's prior mean is its feature's rate times its workspace's ratio; its baseline is the beta-binomial
posterior mean ``(errors + k × prior) / (calls + k)``, where ``k`` (the prior's strength in calls) is
estimated each day by the method of moments from the spread of agents' rates around their priors. A new or
quiet agent therefore starts at its workspace × feature rate and moves to its own as calls accumulate; an
agent whose calls all fail gets a high baseline, never exactly 100%, and one with no errors never 0%.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.error_rates.panel import AgentPanel, rolling_sum, shift


@dataclass(frozen=True)
class BaselineParams:
    window_days: int = 56
    gap_days: int = 7
    feature_strength: float = 2000.0
    workspace_strength: float = 5.0
    agent_strength: float | None = None  # None: method of moments each day
    min_agent_strength: float = 20.0
    max_agent_strength: float = 2000.0
    default_rate: float = 0.02  # prior of the global rate when there are no calls at all
    cap_sigmas: float = 1.5
    cap_passes: int = 3

    @property
    def lookback(self) -> int:
        """Days before ``t`` the baseline of ``t`` reads."""
        return self.gap_days + self.window_days - 1


@dataclass
class Baseline:
    """Per agent and day: ``rate`` (the shrunk baseline), ``prior`` (workspace × feature mean), the window's
    ``calls``; per day: ``strength`` (k); ``capped``: the day's errors exceed what its baseline makes plausible."""

    rate: np.ndarray
    prior: np.ndarray
    calls: np.ndarray
    strength: np.ndarray
    capped: np.ndarray


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, codes = np.unique(values.astype(str), return_inverse=True)
    return codes, max(len(uniq), 1)


def _group_sum(codes: np.ndarray, n_groups: int, x: np.ndarray) -> np.ndarray:
    out = np.zeros((n_groups, x.shape[1]))
    np.add.at(out, codes, x)
    return out[codes]


def _strength(e: np.ndarray, n: np.ndarray, m: np.ndarray, p: BaselineParams) -> np.ndarray:
    """Method-of-moments prior strength per day (column) from agents with at least 100 calls in the window."""
    if p.agent_strength is not None:
        return np.full(e.shape[1], float(p.agent_strength))
    ok = n >= 100
    cnt = ok.sum(axis=0)
    r = np.where(ok, e / np.maximum(n, 1), 0.0)
    between = (np.where(ok, (r - m) ** 2, 0).sum(axis=0) - np.where(ok, m * (1 - m) / np.maximum(n, 1), 0).sum(axis=0))
    between = between / np.maximum(cnt, 1)
    spread = np.where(ok, m * (1 - m), 0).sum(axis=0) / np.maximum(cnt, 1)
    k = spread / np.maximum(between, 1e-9) - 1
    k = np.where(cnt >= 10, k, 100.0)
    return np.clip(k, p.min_agent_strength, p.max_agent_strength)


def _posterior(e: np.ndarray, n: np.ndarray, f_code, n_f, w_code, n_w, p: BaselineParams):
    """Prior means (global -> feature -> workspace ratio) and posterior rates for window sums ``e``, ``n``."""
    p_g = (e.sum(axis=0) + 50 * p.default_rate) / (n.sum(axis=0) + 50)
    e_f, n_f_ = _group_sum(f_code, n_f, e), _group_sum(f_code, n_f, n)
    p_f = (e_f + p.feature_strength * p_g) / (n_f_ + p.feature_strength)
    expected = n * p_f
    obs_w = _group_sum(w_code, n_w, e) - e
    exp_w = _group_sum(w_code, n_w, expected) - expected
    ratio = (obs_w + p.workspace_strength) / (np.maximum(exp_w, 0) + p.workspace_strength)
    m = np.clip(p_f * ratio, 1e-4, 0.5)
    k = _strength(e, n, m, p)
    return m, (e + k * m) / (n + k), k


def baselines(panel: AgentPanel, params: BaselineParams | None = None) -> Baseline:
    """The baseline of every agent on every day of the panel (see the module docstring)."""
    p = params or BaselineParams()
    calls, errors = panel.calls, panel.errors
    f_code, n_f = _codes(panel.feature)
    w_code, n_w = _codes(panel.workspace_id)
    n = rolling_sum(calls, p.window_days, lag=p.gap_days)
    e_raw = rolling_sum(errors, p.window_days, lag=p.gap_days)
    _, b, _ = _posterior(e_raw, n, f_code, n_f, w_code, n_w, p)
    for _ in range(p.cap_passes):
        sd = p.cap_sigmas * np.sqrt(b * (1 - b))
        e_cap = np.zeros_like(e_raw)
        for lag in range(p.gap_days, p.gap_days + p.window_days):
            n_l, e_l = shift(calls, lag), shift(errors, lag)
            e_cap += np.minimum(e_l, n_l * b + sd * np.sqrt(n_l) + 1.0)
        m, b, k = _posterior(e_cap, n, f_code, n_f, w_code, n_w, p)
    capped = errors > calls * b + p.cap_sigmas * np.sqrt(calls * b * (1 - b)) + 1.0
    return Baseline(rate=b, prior=m, calls=n, strength=k, capped=capped)
