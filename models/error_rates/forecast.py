"""Daily error-rate forecasts per agent with 80% and 95% intervals: a two-regime model on the logit scale.

Each agent's next ``horizon`` days are simulated ``n_paths`` times (common random numbers: the same seeded
draws for every agent, so a forecast depends only on the agent's own inputs and re-runs are identical):

* **normal** regime: the rate reverts from its current level (the last 3 days, shrunk toward the baseline)
  to the baseline, ``logit r_h = logit b + reversion^h (logit level - logit b)``, plus day-to-day noise;
* **escalation** regime, with the escalation model's probability: the rate climbs (convex, as incidents
  do) from its level to a breach level (the threshold × a ratio drawn from the breaches seen in history),
  reached the day before the breach is confirmed (the breach day drawn around the model's expected delay),
  holds it for a breach length drawn from history, then reverts. An agent already in breach starts there.

The observed daily rate is then drawn around each path's rate given the agent's expected calls that day
(binomial, normal approximation): with few calls the interval is wide, as the realised rate will be.
Outputs: the mean, the 10/90% and 2.5/97.5% quantiles, and the probability that the breach has been
confirmed by each day. All parameters (reversion, noise, breach levels and lengths) are estimated from the
same history the escalation model trains on (:func:`fit_path_params`); the normal regime's rate and the
escalation paths' excess over it are then scaled so that, on held-out weeks, forecast failed calls match those
observed (``normal_scale``, ``escalation_scale``: least squares, ``models.error_rates.engine.calibrate``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.error_rates.panel import expit, logit

QUANTILES = (0.025, 0.10, 0.90, 0.975)


@dataclass
class PathParams:
    reversion: float = 0.6
    noise_sd: float = 0.4
    breach_ratio: np.ndarray = field(default_factory=lambda: np.array([1.5, 2.0, 3.0]))
    breach_days: np.ndarray = field(default_factory=lambda: np.array([2.0, 3.0, 4.0]))
    normal_scale: float = 1.0  # multiplies the normal regime's rate (calibrated on held-out weeks)
    escalation_scale: float = 1.0  # share of the escalation paths' excess over the normal regime kept

    def as_dict(self) -> dict:
        return {"reversion": self.reversion, "noise_sd": self.noise_sd, "normal_scale": self.normal_scale,
                "escalation_scale": self.escalation_scale,
                "breach_ratio_quantiles": np.quantile(self.breach_ratio, [0.1, 0.5, 0.9]).tolist(),
                "breach_days_quantiles": np.quantile(self.breach_days, [0.1, 0.5, 0.9]).tolist()}


def fit_path_params(calls: np.ndarray, errors: np.ndarray, baseline: np.ndarray, level: np.ndarray,
                    thr: np.ndarray, breach: np.ndarray, columns: np.ndarray,
                    quiet_ahead: np.ndarray | None = None) -> PathParams:
    """Estimate the path parameters from history (``(A, D)`` arrays), using days in ``columns`` only.

    Reversion: calls-weighted least-squares slope (through 0) of the next day's rate above the baseline on
    today's level above it, on quiet days with enough calls (``quiet_ahead``: no breach in the horizon that
    follows, when known); noise: the residual variance left after the
    binomial variance, on the logit scale; breach levels and lengths: the observed breach days and runs.
    """
    p = PathParams()
    cols = np.asarray(columns)
    cols = cols[cols + 1 < calls.shape[1]]
    if len(cols) == 0:
        return p
    n1, e1 = calls[:, cols + 1], errors[:, cols + 1]
    b, lvl = baseline[:, cols], level[:, cols]
    quiet = ~breach[:, cols] & ~breach[:, cols + 1] & (n1 >= 20)
    if quiet_ahead is not None:
        quiet &= quiet_ahead[:, cols]
    if quiet.sum() >= 200:
        w, bq = n1[quiet], b[quiet]
        x = lvl[quiet] - bq
        y = e1[quiet] / n1[quiet] - bq
        if (w * x**2).sum() > 0:
            p.reversion = float(np.clip((w * x * y).sum() / (w * x**2).sum(), 0.0, 0.95))
        resid = y - p.reversion * x
        r = np.clip(bq + p.reversion * x, 1e-4, 1 - 1e-4)
        extra = np.sum(w * (resid**2 - r * (1 - r) / w)) / w.sum()  # latent variance beyond the binomial's
        slope = np.sum(w * r * (1 - r)) / w.sum()  # d rate / d logit at the typical rate
        p.noise_sd = float(np.clip(np.sqrt(max(extra, 0.0)) / slope, 0.05, 1.0))
    day_rate = np.where(calls > 0, errors / np.maximum(calls, 1), np.nan)
    on = breach[:, cols]
    ratios = (day_rate[:, cols] / thr[:, cols])[on]
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) >= 10:
        p.breach_ratio = np.sort(np.clip(ratios, 1.0, 20.0))
    lengths = []
    for row in on:
        if row.any():
            padded = np.concatenate([[0], row.astype(int), [0]])
            starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
            lengths.extend((ends - starts + 1).tolist())  # + the first day above the threshold
    if len(lengths) >= 10:
        p.breach_days = np.sort(np.asarray(lengths, dtype=float))
    return p


@dataclass
class AgentState:
    """Per agent (arrays of length A): baseline, current level and threshold (rates), P(breach within the
    horizon), expected days to the breach, whether a breach is in progress, expected calls ``(A, horizon)``."""

    baseline: np.ndarray
    level: np.ndarray
    threshold: np.ndarray
    p_breach: np.ndarray
    expected_days: np.ndarray
    delay_sd: float
    in_breach: np.ndarray
    expected_calls: np.ndarray


def forecast(state: AgentState, params: PathParams, horizon: int, n_paths: int = 400, seed: int = 0,
             chunk: int = 500) -> dict[str, np.ndarray]:
    """Simulate the paths; returns ``(A, horizon)`` arrays ``mean``, ``q025``, ``q10``, ``q90``, ``q975``,
    ``p_breach_by`` (breach confirmed by that day) and ``latent`` (mean of the underlying rate).

    Agents are simulated ``chunk`` at a time (memory: about 50 bytes × chunk × n_paths × horizon)."""
    a = len(state.baseline)
    keys = ("mean", "q025", "q10", "q90", "q975", "p_breach_by", "latent")
    if a == 0:
        return {k: np.zeros((0, horizon)) for k in keys}
    parts = []
    for lo in range(0, a, chunk):
        sl = slice(lo, lo + chunk)
        part = AgentState(**{k: (v[sl] if isinstance(v, np.ndarray) else v) for k, v in state.__dict__.items()})
        parts.append(_simulate(part, params, horizon, n_paths, seed))
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _simulate(state: AgentState, params: PathParams, horizon: int, n_paths: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    u_regime = rng.random(n_paths)
    z_delay, u_ratio, u_len = rng.normal(size=n_paths), rng.random(n_paths), rng.random(n_paths)
    z_day, z_obs = rng.normal(size=(n_paths, horizon)), rng.normal(size=(n_paths, horizon))
    h = np.arange(1, horizon + 1, dtype=float)

    lb = logit(state.baseline)[:, None, None]
    ll = logit(state.level)[:, None, None]
    normal = lb + params.reversion ** h[None, None, :] * (ll - lb)

    escalate = (u_regime[None, :] < state.p_breach[:, None]) | state.in_breach[:, None]
    tau = np.exp(np.log(np.maximum(state.expected_days, 1))[:, None] + state.delay_sd * z_delay[None, :])
    tau = np.where(state.in_breach[:, None], 0.0, np.clip(np.rint(tau), 1, horizon))
    ratio = np.quantile(params.breach_ratio, u_ratio)
    length = np.quantile(params.breach_days, u_len)
    peak = np.minimum(0.97, np.maximum(state.threshold[:, None] * ratio[None, :], state.level[:, None]))
    lp = logit(peak)[:, :, None]
    reach = (tau - 1)[:, :, None]  # the day before the breach is confirmed is already above the threshold
    frac = np.where(reach[..., 0:1] > 0, np.clip(h[None, None, :] / np.maximum(reach, 1), 0, 1) ** 2, 1.0)
    ramp = ll + (lp - ll) * frac
    end = reach + length[None, :, None]
    after = lb + params.reversion ** np.maximum(h[None, None, :] - end, 0) * (lp - lb)
    esc = np.where(h[None, None, :] <= end, ramp, after)
    noise = params.noise_sd * z_day[None, :, :]
    base_rate = np.clip(params.normal_scale * expit(normal + noise), 0.0, 1.0)
    latent = np.where(escalate[:, :, None], base_rate + params.escalation_scale * (expit(esc + noise) - base_rate),
                      base_rate).clip(0.0, 1.0)

    n = np.maximum(np.rint(state.expected_calls), 1)[:, None, :]
    errors = np.clip(np.rint(n * latent + np.sqrt(n * latent * (1 - latent)) * z_obs[None, :, :]), 0, n)
    observed = errors / n
    qs = np.quantile(observed, QUANTILES, axis=1)
    breached_by = escalate[:, :, None] & (tau[:, :, None] <= h[None, None, :])
    return {"mean": observed.mean(axis=1), "q025": qs[0], "q10": qs[1], "q90": qs[2], "q975": qs[3],
            "p_breach_by": breached_by.mean(axis=1), "latent": latent.mean(axis=1)}


def expected_calls(calls: np.ndarray, column: int, horizon: int, weeks: int = 4) -> np.ndarray:
    """Expected calls for each of the ``horizon`` days after ``column``: the mean of the same weekday over the
    last ``weeks`` weeks (of the weeks the agent existed), ``(A, horizon)``."""
    a = calls.shape[0]
    out = np.zeros((a, horizon))
    for j in range(horizon):
        lags = [column + 1 + j - 7 * k for k in range(1, weeks + 2) if column + 1 + j - 7 * k <= column]
        lags = [c for c in lags if c >= 0][:weeks]
        if lags:
            out[:, j] = calls[:, lags].mean(axis=1)
    return out


def forecast_frame(keys: pd.DataFrame, as_of, result: dict[str, np.ndarray], calls: np.ndarray) -> pd.DataFrame:
    """Long frame: ``keys`` columns × ``prediction_date`` with the forecast columns."""
    a, horizon = result["mean"].shape
    dates = pd.Timestamp(as_of) + pd.to_timedelta(np.arange(1, horizon + 1), unit="D")
    out = keys.loc[keys.index.repeat(horizon)].reset_index(drop=True)
    out["prediction_date"] = np.tile(dates, a)
    out["predicted_rate"] = result["mean"].ravel()
    out["lower_95"], out["upper_95"] = result["q025"].ravel(), result["q975"].ravel()
    out["lower_80"], out["upper_80"] = result["q10"].ravel(), result["q90"].ravel()
    out["expected_calls"] = calls.ravel()
    out["p_breach_by"] = result["p_breach_by"].ravel()
    lo, hi = out[["lower_95", "lower_80"]].min(axis=1), out[["upper_95", "upper_80"]].max(axis=1)
    out["lower_95"], out["upper_95"] = np.minimum(lo, out["predicted_rate"]), np.maximum(hi, out["predicted_rate"])
    out["lower_80"] = out["lower_80"].clip(lower=out["lower_95"], upper=out["predicted_rate"])
    out["upper_80"] = out["upper_80"].clip(lower=out["predicted_rate"], upper=out["upper_95"])
    return out
