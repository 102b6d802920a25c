"""The alerting rules users already know, on the same panel, for comparison (``bench/agent_errors.py``).

Each returns a boolean ``(A, D)`` array: an alert as of the end of each day. All of them get the same
minimum-volume guard as the model (``min_calls_7d``), so the comparison is about the rule, not the guard.

* ``static``: yesterday's error rate (the as-of day's) at or above a fixed rate.
* ``three_sigma``: the day's rate above the mean + ``sigmas`` standard deviations of the daily rates of the
  previous ``window`` days with calls (an anomaly monitor's band).
* ``burn_rate``: SRE multiwindow burn-rate alerts on an error budget: the agent's SLO allows
  ``budget_factor`` × its trailing error rate (days T-34..T-7, at least ``min_budget``); alert when the burn
  rate (error rate / budget) is at least ``fast`` over both 1 and 3 days, or at least ``slow`` over both 1 and
  7 days (the workbook's long and short windows, at daily resolution).
"""
from __future__ import annotations

import numpy as np

from models.error_rates.panel import AgentPanel, rolling_sum


def _guard(panel: AgentPanel, min_calls_7d: float) -> np.ndarray:
    return (rolling_sum(panel.calls, 7) >= min_calls_7d) & (panel.calls > 0)


def static(panel: AgentPanel, rate: float = 0.10, min_calls_7d: float = 0.0) -> np.ndarray:
    n, e = panel.calls, panel.errors
    return _guard(panel, min_calls_7d) & (e >= rate * n)


def three_sigma(panel: AgentPanel, sigmas: float = 3.0, window: int = 21, min_calls_7d: float = 0.0) -> np.ndarray:
    n, e = panel.calls, panel.errors
    active = n > 0
    r = np.where(active, e / np.maximum(n, 1), 0.0)
    k = rolling_sum(active.astype(float), window, lag=1)
    s1, s2 = rolling_sum(r, window, lag=1), rolling_sum(r**2, window, lag=1)
    mean = s1 / np.maximum(k, 1)
    sd = np.sqrt(np.maximum(s2 / np.maximum(k, 1) - mean**2, 0.0))
    return _guard(panel, min_calls_7d) & (k >= 7) & (r > mean + sigmas * sd)


def burn_rate(panel: AgentPanel, fast: float = 3.0, slow: float = 1.5, budget_factor: float = 2.0,
              min_budget: float = 0.005, min_calls_7d: float = 0.0) -> np.ndarray:
    n, e = panel.calls, panel.errors
    trailing = rolling_sum(e, 28, lag=7) / np.maximum(rolling_sum(n, 28, lag=7), 1)
    budget = np.maximum(budget_factor * trailing, min_budget)

    def burn(w: int) -> np.ndarray:
        return rolling_sum(e, w) / np.maximum(rolling_sum(n, w), 1) / budget

    b1, b3, b7 = burn(1), burn(3), burn(7)
    alert = ((b1 >= fast) & (b3 >= fast)) | ((b1 >= slow) & (b7 >= slow))
    return _guard(panel, min_calls_7d) & alert


RULES = {"static": static, "three_sigma": three_sigma, "burn_rate": burn_rate}
# (name, parameter grid) searched by the benchmark for each rule's best configuration in hindsight
RULE_GRIDS = {
    "static": [{"rate": r} for r in (0.05, 0.08, 0.10, 0.15, 0.20, 0.30)],
    "three_sigma": [{"sigmas": s} for s in (2.0, 3.0, 4.0, 6.0)],
    "burn_rate": [{"fast": f, "slow": f / 2} for f in (2.0, 3.0, 5.0, 8.0, 12.0)],
}
