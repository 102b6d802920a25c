"""Rhythm: a user's usual gap between active days, their state, and the MBG/NBD probability of being alive.

**Usual gap.** ``usual_gap_days = (gap_sum + PRIOR_GAPS * workspace_gap) / (n_gaps + PRIOR_GAPS)``: the user's
own mean gap between consecutive active days, shrunk towards their workspace's usual gap (the median of its
users' own mean gaps) as if the user had also shown :data:`PRIOR_GAPS` gaps of the workspace's length. A
user seen on one day only gets the workspace's gap; a daily user with 200 gaps keeps their own.

**State** (:func:`churn_state`), from the silence ``s = recency_days`` (days since the last active day; 0 =
active on the as-of day) and the usual gap ``g``:

* ``active``: ``s <= max(ACTIVE_GAPS * g, ACTIVE_MIN_DAYS)`` = ``max(3g, 7)``: silent no longer than this
  user usually is (and nobody lapses within a week);
* ``dormant``: ``s > max(DORMANT_GAPS * g, DORMANT_MIN_DAYS)`` = ``max(10g, 30)``: silent for ten usual
  gaps, and at least a month;
* ``lapsing``: in between.

So a daily user (g ~ 1.3) silent 10 days is lapsing and dormant after 30; a weekly user (g = 7) lapses
after 21 days and is dormant after 70; a six-weekly buyer (g = 42) silent 30 days is active, lapsing from
127 days. If gaps were exponential, an alive user is silent for more than 3 gaps 5% of the time and more
than 10 gaps 0.005% of the time.

**P(alive)** (:class:`MBGNBD`): the modified BG/NBD model of Batislam, Denizel & Filiztekin (2007) on active
days: while alive a user is active at a Poisson rate (gamma(r, alpha) across users) and after each active
day, including the first, leaves with probability p (beta(a, b) across users). Given ``x`` repeat active
days, the last one ``t_x`` days after the first, and ``T`` days observed since the first,

    P(alive) = 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)),

in (0, 1], falling as the silence ``T - t_x`` grows. Unlike the plain BG/NBD it is below 1 for users seen
once (they may have left right away). Parameters are fitted by maximum likelihood (scipy L-BFGS-B on the
log-parameters) pooled over all users given, not per workspace: most workspaces are too small for four
parameters, and the posterior is per user anyway (their own x, t_x, T); the workspace's rhythm enters the
churn model through the usual-gap features.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

STATES = ("active", "lapsing", "dormant")
PRIOR_GAPS = 2.0
DEFAULT_GAP_DAYS = 7.0  # a workspace with no user seen on two days
ACTIVE_GAPS, ACTIVE_MIN_DAYS = 3.0, 7.0
DORMANT_GAPS, DORMANT_MIN_DAYS = 10.0, 30.0


def usual_gap(gap_sum: Sequence[float], n_gaps: Sequence[float], workspace_gap: Sequence[float] | float,
              prior_gaps: float = PRIOR_GAPS) -> np.ndarray:
    """The user's own mean gap shrunk towards the workspace's: ``(gap_sum + k * ws) / (n_gaps + k)``."""
    gap_sum, n_gaps = np.asarray(gap_sum, dtype=float), np.asarray(n_gaps, dtype=float)
    ws = np.broadcast_to(np.asarray(workspace_gap, dtype=float), gap_sum.shape)
    ws = np.where(np.isfinite(ws) & (ws > 0), ws, DEFAULT_GAP_DAYS)
    return (gap_sum + prior_gaps * ws) / (n_gaps + prior_gaps)


def state_thresholds(usual_gap_days: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(last silent day still ``active``, last silent day still ``lapsing``) for each usual gap."""
    g = np.asarray(usual_gap_days, dtype=float)
    return np.maximum(ACTIVE_GAPS * g, ACTIVE_MIN_DAYS), np.maximum(DORMANT_GAPS * g, DORMANT_MIN_DAYS)


def churn_state(recency_days: Sequence[float], usual_gap_days: Sequence[float]) -> np.ndarray:
    """``active`` / ``lapsing`` / ``dormant`` per user from the silence and the usual gap (module docstring)."""
    s = np.asarray(recency_days, dtype=float)
    active_until, lapsing_until = state_thresholds(usual_gap_days)
    return np.where(s <= active_until, "active", np.where(s <= lapsing_until, "lapsing", "dormant")).astype(object)


@dataclass(frozen=True)
class MBGNBD:
    """Fitted MBG/NBD parameters (time unit: days); see the module docstring."""

    r: float
    alpha: float
    a: float
    b: float

    @staticmethod
    def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        if (x < 0).any() or (t_x < 0).any() or (t_x > T).any():
            raise ValueError("need x >= 0 and 0 <= t_x <= T")
        return x, t_x, T

    @staticmethod
    def neg_log_likelihood(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
        """Mean negative log-likelihood of ``(x, t_x, T)`` at ``exp(log_params) = (r, alpha, a, b)``."""
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return float(-(a1 + a2 + a3 + np.logaddexp(a4, 0.0)).mean())

    @classmethod
    def fit(cls, x: Sequence[float], t_x: Sequence[float], T: Sequence[float]) -> MBGNBD:
        """Maximum-likelihood fit on repeat active days ``x``, last-minus-first ``t_x`` and observed ``T`` (days).

        Deterministic (fixed start, L-BFGS-B); log-parameters are bounded to [-8, 8].
        """
        x, t_x, T = cls._arrays(x, t_x, T)
        if len(x) == 0:
            raise ValueError("no users to fit MBG/NBD on")
        T = np.maximum(T, 1e-3)  # users first seen on the as-of day: a sliver of observation
        start = np.log([1.0, max(1.0, float(np.mean(T))), 1.0, 3.0])
        res = minimize(cls.neg_log_likelihood, start, args=(x, t_x, T), method="L-BFGS-B",
                       bounds=[(-8.0, 8.0)] * 4)
        r, alpha, a, b = np.exp(res.x)
        return cls(float(r), float(alpha), float(a), float(b))

    def p_alive(self, x: Sequence[float], t_x: Sequence[float], T: Sequence[float]) -> np.ndarray:
        """P(alive at T | x, t_x, T), in (0, 1]."""
        x, t_x, T = self._arrays(x, t_x, T)
        log_odds = (np.log(self.a) - np.log(self.b + x)
                    + (self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x)))
        return 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700.0)))

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}
