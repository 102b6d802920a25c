"""Sample paths of DAU, WAU and MAU, and everything read off them: scenarios, milestones, goals.

Pure functions over arrays; ``pipelines.growth.project`` feeds them.

**How paths are simulated.** The ensembles forecast each metric of each workspace (``yhat``, raw user counts).
Their rolling-origin backtests give, for every workspace and cutoff, the errors they actually made over the next
``H`` days on the log scale, ``e(k) = log1p(y) - log1p(yhat)``, for the three metrics at once: one *error
path unit*. A path of a workspace is ``expm1(log1p(yhat) + e)`` with ``e`` a whole unit drawn (seeded) from
the pool of units of similar workspaces (same MAU-size group). So the dependence across days (a level that
drifts stays drifted) and across metrics (a bad month moves DAU, WAU and MAU together) comes from what really
happened, not from an assumed distribution; the units are not centred, so the ensembles' typical miss is
carried into the paths too. Beyond ``H`` days a unit continues proportionally,
``e(k) = e(H) * k / H`` (extrapolated, not calibrated). Every scenario and milestone is read off the same paths.

**Coherence**, per path and day, after rounding to whole users: ``0 <= DAU <= WAU <= MAU``; more strictly,
WAU is at least every DAU of its 7 days and MAU every WAU inside its window (the realised values before the
as-of date included); and users already active in the window stay counted until they age out of it (WAU and
MAU are at least the users carried over from the as-of date). Quantiles of coherent paths are coherent: the
same order statistic of ``X <= Y`` is ``<= ``, so ``worst <= likely <= best`` and ``DAU <= WAU <= MAU`` hold
in every scenario on every day.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

METRICS = ("dau", "wau", "mau")
QUANTILES = (0.025, 0.10, 0.50, 0.90, 0.975)  # lower 95, worst, likely, best, upper 95
SCENARIOS = {"worst": 1, "likely": 2, "best": 3}  # scenario -> index in QUANTILES
MILESTONE_QUANTILES = (0.10, 0.50, 0.90)
# The ensemble's default members. Plain ETS is left out: on the 1,000-workspace holdout it was behind Theta on
# every metric at both horizons (and no better than damped ETS), at a sixth of the fitting time.
MEMBERS = ("SeasonalNaive", "DampedETS", "Theta", "GlobalGBM")


def build_members(names=MEMBERS, country: str | None = "US", n_jobs: int = 1) -> list:
    """The growth ensemble's members by name: SeasonalNaive plain (the baseline), the others fitted on history
    cleaned of outliers and holidays (``Robust``), Prophet plain. ETS and damped-trend ETS use half a year."""
    from models.forecasting import (
        ETS,
        DampedETS,
        GlobalGBM,
        Prophet,
        Robust,
        SeasonalNaive,
        Theta,
    )

    make = {"SeasonalNaive": lambda: SeasonalNaive(),
            "ETS": lambda: Robust(ETS(max_history=26, n_jobs=n_jobs)),
            "DampedETS": lambda: Robust(DampedETS(model="AAA", max_history=26, n_jobs=n_jobs)),
            "Theta": lambda: Robust(Theta(max_history=26, n_jobs=n_jobs)),
            "GlobalGBM": lambda: Robust(GlobalGBM(n_estimators=150, train_seasons=26, country=country,
                                                  n_jobs=n_jobs, seed=0)),
            "Prophet": lambda: Prophet(country=country, n_jobs=n_jobs, seed=0)}
    return [make[n]() for n in names]


def stable_seed(*parts) -> int:
    """A seed from values (e.g. a workspace id), the same in every process and run."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:12], 16)


@dataclass
class ErrorBank:
    """Error path units: ``errors`` (n_units, 3, H) log-scale backtest errors, ``group`` per unit."""

    errors: np.ndarray
    group: np.ndarray

    @property
    def horizon(self) -> int:
        return int(self.errors.shape[2])

    def pool(self, group: str, min_units: int = 30) -> np.ndarray:
        """Units of ``group``, or all units when the group has fewer than ``min_units``."""
        rows = np.flatnonzero(self.group == group)
        return rows if rows.size >= min_units else np.arange(len(self.group))


def size_groups(mau: np.ndarray, min_size: int = 20, n_groups: int = 3) -> np.ndarray:
    """Group label per workspace by MAU (tertiles of log MAU when each holds ``min_size``, else one group)."""
    mau = np.asarray(mau, float)
    if mau.size < min_size * n_groups:
        return np.full(mau.size, "all", dtype=object)
    edges = np.quantile(np.log1p(mau), np.linspace(0, 1, n_groups + 1)[1:-1])
    return np.array([f"size-{i + 1}of{n_groups}" for i in np.searchsorted(edges, np.log1p(mau), side="right")],
                    dtype=object)


def extend(errors: np.ndarray, h: int) -> np.ndarray:
    """Error paths (..., H) to ``h`` steps: cut, or continued proportionally, e(k) = e(H) * k / H."""
    H = errors.shape[-1]
    if h <= H:
        return errors[..., :h]
    k = np.arange(H + 1, h + 1)
    return np.concatenate([errors, errors[..., -1:] * (k / H)], axis=-1)


def running_max(x: np.ndarray, history: np.ndarray, width: int) -> np.ndarray:
    """Max over the last ``width`` days (``history``: the days before ``x``'s first) along the last axis."""
    full = np.concatenate([np.broadcast_to(history, (*x.shape[:-1], history.shape[-1])), x], axis=-1)
    out = np.empty_like(x)
    n_hist = history.shape[-1]
    for k in range(x.shape[-1]):
        lo = max(0, n_hist + k - width + 1)
        out[..., k] = full[..., lo:n_hist + k + 1].max(axis=-1)
    return out


def simulate(yhat: np.ndarray, bank: ErrorBank, group: str, n_paths: int, seed: int,
             recent: np.ndarray | None = None, carried: np.ndarray | None = None,
             mau_window: int = 28, add: np.ndarray | None = None) -> np.ndarray:
    """Coherent sample paths of one workspace.

    Args:
        yhat: Point forecasts (3, h) for DAU, WAU, MAU.
        bank: Error path units.
        group: The workspace's size group in ``bank``.
        n_paths: Paths to draw.
        seed: Seed of the draw.
        recent: Realised (3, mau_window) values of the last days up to the as-of date, oldest first.
        carried: (2, h) lower bounds on WAU and MAU from users already active (0 once they have aged out).
        mau_window: The MAU window in days.
        add: Known counts (3, h) added to every path (users of a sign-up burst until they age out,
            ``pipelines.growth.cohorts``).

    Returns:
        Integer user counts (n_paths, 3, h), coherent as described in the module docstring.
    """
    h = yhat.shape[1]
    rng = np.random.default_rng(seed)
    units = bank.pool(group)
    errors = extend(bank.errors[units[rng.integers(0, units.size, n_paths)]], h)
    paths = np.maximum(np.rint(np.expm1(np.log1p(np.maximum(yhat, 0.0))[None] + errors)), 0.0)
    if add is not None:
        paths = paths + add[None]
    return coherent(paths, recent, carried, mau_window)


def coherent(paths: np.ndarray, recent: np.ndarray | None = None, carried: np.ndarray | None = None,
             mau_window: int = 28) -> np.ndarray:
    """Raise WAU and MAU so that DAU <= WAU <= MAU per path and day (see the module docstring)."""
    dau, wau, mau = paths[:, 0], paths[:, 1], paths[:, 2]
    empty = np.zeros(0)
    wau = np.maximum(wau, running_max(dau, empty if recent is None else recent[0, -6:], 7))
    if carried is not None:
        wau = np.maximum(wau, carried[0])
    mau = np.maximum(mau, running_max(wau, empty if recent is None else recent[1, -(mau_window - 7):],
                                      mau_window - 6))
    if carried is not None:
        mau = np.maximum(mau, carried[1])
    return np.stack([dau, wau, mau], axis=1)


def carried_over(days_since_active: np.ndarray, h: int, mau_window: int = 28) -> np.ndarray:
    """Lower bounds (2, h) on WAU and MAU on the days after the as-of date from the users active in the MAU
    window before it: a user last active ``r`` days before the as-of date still counts in WAU for ``6 - r``
    more days and in MAU for ``mau_window - 1 - r``."""
    r = np.asarray(days_since_active, int)
    k = np.arange(1, h + 1)
    wau = (r[None, :] <= (6 - k)[:, None]).sum(axis=1)
    mau = (r[None, :] <= (mau_window - 1 - k)[:, None]).sum(axis=1)
    return np.stack([wau, mau]).astype(float)


def scenario_quantiles(paths: np.ndarray) -> np.ndarray:
    """(len(QUANTILES), 3, h) quantiles over the paths; each is a path value (``inverted_cdf``)."""
    return np.quantile(paths, QUANTILES, axis=0, method="inverted_cdf")


NICE = {0: (1, 2, 3, 4, 5, 6, 8)}
NICE_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5)


def nice_thresholds(value: float, n: int = 2) -> list[int]:
    """The next ``n`` round numbers strictly above ``value`` (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50,
    60, 75, 100, 150, ...)."""
    out: list[int] = []
    exp = 0
    while len(out) < n:
        steps = NICE[0] if exp == 0 else [round(s * 10 ** exp) for s in NICE_STEPS]
        out += [s for s in steps if s > value][: n - len(out)]
        exp += 1
    return out


def first_crossing(paths: np.ndarray, threshold: float) -> np.ndarray:
    """Per path, the first step (1-based) at which it reaches ``threshold``; ``inf`` when it never does."""
    hit = paths >= threshold
    first = hit.argmax(axis=-1) + 1.0
    return np.where(hit.any(axis=-1), first, np.inf)


def milestone(paths: np.ndarray, threshold: float, as_of: date) -> dict:
    """Probability of reaching ``threshold`` within the paths' horizon and the P10/P50/P90 dates of the first
    day it is reached (``None`` when fewer than that share of paths reach it). ``paths``: (n_paths, h)."""
    steps = first_crossing(paths, threshold)
    q = np.quantile(steps, MILESTONE_QUANTILES, method="inverted_cdf")
    dates = [None if not np.isfinite(s) else as_of + timedelta(days=int(s)) for s in q]
    return {"threshold": float(threshold), "probability": float(np.isfinite(steps).mean()), "horizon_days":
            int(paths.shape[-1]), **dict(zip(("date_p10", "date_p50", "date_p90"), dates))}


def growth_per_30d(start: float, end: float, days: int) -> float | None:
    """Compound growth per 30 days from ``start`` to ``end`` over ``days`` (``None`` when undefined)."""
    if days <= 0 or start <= 0 or end < 0:
        return None
    return float((end / start) ** (30.0 / days) - 1.0)


def goal_projection(paths: np.ndarray, current: float, target: float, due: date, as_of: date) -> dict:
    """A goal against one metric's paths (n_paths, h): P(reached on or before the due date), P(value on the due
    date >= target), the P10/P50/P90 value on the due date, and the growth per 30 days it needs from today's
    value beside the growth of the likely projection. The caller handles due dates outside the paths."""
    k = (due - as_of).days
    upto = paths[:, :k]
    on_due = upto[:, -1]
    p10, p50, p90 = np.quantile(on_due, MILESTONE_QUANTILES, method="inverted_cdf")
    return {"status": "projected", "current_value": float(current),
            "probability_met": float((upto >= target).any(axis=1).mean()),
            "probability_on_due_date": float((on_due >= target).mean()),
            "value_p10": float(p10), "value_p50": float(p50), "value_p90": float(p90),
            "required_growth_30d": growth_per_30d(current, target, k),
            "projected_growth_30d": growth_per_30d(current, float(p50), k)}
