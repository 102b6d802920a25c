"""Conformal intervals and the backtest-weighted ensemble."""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .base import BaseForecaster, Fallback, SeasonalNaive
from .baselines import finalise
from .checks import ForecastInputError, check_horizon, check_level
from .evaluation import backtest, check_names
from .gbm import GlobalGBM
from .lstm import GlobalLSTM, torch_available
from .members import ARIMA, ETS, MSTL, DampedETS, Prophet, Theta
from .panel import Panel, mase_scale
from .robust import Robust

logger = logging.getLogger(__name__)

CLOSE_TO_BEST = 0.10
"""Members whose backtest MASE is within this share of the best one join the equal-weight candidate."""


def feasible_backtest_h(panel: Panel, h: int, n_windows: int, step: int | None) -> int:
    """Largest backtest horizon up to ``h`` that leaves the longest series two seasons of training
    before its first cutoff (0 if none)."""
    room = int(panel.lengths.max()) - 2 * panel.season_length
    fit = room // n_windows if step is None else room - (n_windows - 1) * step
    return max(0, min(h, fit))


def isotonic_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``values`` (pool-adjacent-violators).

    Entries with weight 0 take the value of the block they fall in (0 if all weights are 0).
    """
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for v, w in zip(np.asarray(values, float), np.asarray(weights, float)):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (v2, w2, c2), (v1, w1, c1) = blocks.pop(), blocks.pop()
            total = w1 + w2
            mean = (v1 * w1 + v2 * w2) / total if total > 0 else max(v1, v2)
            blocks.append([mean, total, c1 + c2])
    return np.repeat([b[0] for b in blocks], [b[2] for b in blocks])


class ConformalCalibrator:
    """Split-conformal interval half-widths per horizon step, from backtest errors.

    Scores are absolute errors divided by the series' MASE scale (its seasonal-naive MAE), pooled
    over series, so one set of quantiles serves series of any size and noise level. Step ``k``
    uses the scores of step ``k`` and, while fewer than ``min_pool``, of neighbouring steps too,
    with the split-conformal finite-sample rank ``ceil((n + 1) * level)``. Quantiles are made
    non-decreasing in ``k`` by a weighted isotonic fit (pool-adjacent-violators, weights = scores
    per step), not by a running maximum: per-step quantiles of a few hundred scores are noisy, and
    their running maximum follows the upper envelope of that noise (and, for hourly data, of the
    time-of-day profile), which made 95% intervals cover 97.5% of real daily and 98.5% of real
    hourly points (``bench/real_series.py``). Beyond the backtest horizon ``H`` quantiles are not
    calibrated but extrapolated as ``q[H] * (k / H) ** growth``.

    Args:
        errors: Backtest errors ``y - yhat``, one per (series, window, step).
        steps: Step of each error (0 = first step).
        scale: MASE scale of each error's series; entries with scale 0 are skipped.
        h: Backtest horizon.
        min_pool: Minimum number of scores behind each step's quantile.
        growth: Exponent of the extrapolation beyond ``h``: 0.5 for one step's error, 1 for running totals.
    """

    def __init__(self, errors: np.ndarray, steps: np.ndarray, scale: np.ndarray, h: int, min_pool: int = 50,
                 growth: float = 0.5):
        ok = (scale > 0) & np.isfinite(errors)
        scores = np.abs(errors[ok]) / scale[ok]
        self.h = h
        self.scores = [np.sort(scores[steps[ok] == k]) for k in range(h)]
        self.min_pool = min_pool
        self.growth = growth

    @property
    def n_scores(self) -> int:
        return int(sum(s.size for s in self.scores))

    def quantiles(self, level: int, h: int) -> np.ndarray:
        """Normalised half-widths for steps ``1..h`` at ``level`` percent."""
        base, sizes = np.zeros(self.h), np.zeros(self.h)
        for k in range(self.h):
            radius = 0
            pool = self.scores[k]
            while pool.size < self.min_pool and radius < self.h:
                radius += 1
                pool = np.concatenate(self.scores[max(0, k - radius) : k + radius + 1])
            if pool.size:
                rank = min(pool.size, int(np.ceil((pool.size + 1) * level / 100)))  # finite-sample correction
                base[k], sizes[k] = np.sort(pool)[rank - 1], pool.size
        base = isotonic_increasing(base, sizes)
        steps = np.arange(1, h + 1)
        return np.where(steps <= self.h, base[np.minimum(steps, self.h) - 1], base[-1] * (steps / self.h) ** self.growth)

    def bands(self, mean: np.ndarray, scale: np.ndarray, levels: Sequence[int]) -> dict:
        """``{level: (lower, upper)}`` around ``mean`` (n_series, h) for series scales ``scale``."""
        out = {}
        for lv in levels:
            half = scale[:, None] * self.quantiles(lv, mean.shape[1])[None, :]
            out[lv] = (mean - half, mean + half)
        return out


class ConformalForecaster(BaseForecaster):
    """Wrap any forecaster and replace its intervals with conformal ones from its own backtest.

    Args:
        model: The forecaster to wrap.
        backtest_h: Horizon of the calibration backtest.
        n_windows: Backtest cutoffs.
        step: Steps between cutoffs (default ``backtest_h``).
        refit: Refit the model at every cutoff (False: fit once, then condition on new history).
        alias: Column name in backtests (default: the wrapped model's name).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "Conformal"

    def __init__(
        self,
        model: BaseForecaster,
        *,
        backtest_h: int = 30,
        n_windows: int = 4,
        step: int | None = None,
        refit: bool = False,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(alias=alias, fill=fill)
        self.model = model
        self.backtest_h = backtest_h
        self.n_windows = n_windows
        self.step = step
        self.refit = refit
        self.name = alias or model.name

    def _fit_panel(self, panel: Panel, forward: bool = False) -> ConformalForecaster:
        bh = feasible_backtest_h(panel, self.backtest_h, self.n_windows, self.step)
        self.calibrator_ = None
        if bh:
            bt = backtest(panel, [self.model], bh, self.n_windows, self.step, (), self.refit)
            self.calibrator_ = ConformalCalibrator(bt.y - bt.forecasts[self.model.name][0], bt.step, bt.scale, bh)
        else:
            logger.warning("%s: history too short for a backtest; keeping the model's own intervals", self.name)
        self.model._fit_panel(panel, forward=bool(bh) and not self.refit)
        self.panel_ = panel
        self.fallbacks = self.model.fallbacks
        self._scale = mase_scale(panel)
        return self

    def predict_arrays(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        if not hasattr(self, "panel_"):
            raise ForecastInputError(f"{self.name} is not fitted yet; call fit(df, freq) before predict.")
        levels = [check_level(lv) for lv in levels]
        if self.calibrator_ is None:
            return self.model.predict_arrays(h, levels)
        mean, _ = self.model.predict_arrays(h, [])
        return finalise(self.panel_, mean, self.calibrator_.bands(mean, self._scale, levels))


def default_members(
    *,
    include_prophet: bool = False,
    country: str | None = "US",
    n_jobs: int = 1,
    seed: int = 0,
    fill: str | None = "zero",
    robust: bool = True,
    include_lstm: bool = False,
    lstm_params: dict | None = None,
) -> list[BaseForecaster]:
    """SeasonalNaive, ETS, ARIMA, Theta, GlobalGBM, MSTL and DampedETS, plus Prophet and the LSTM if asked.

    MSTL (weekly + yearly seasons for daily data, daily + weekly for hourly data; without the longer
    season when the history holds less than two cycles of it) covers yearly seasonality and the
    weekly season of hourly data; DampedETS covers trend and level growth. The backtest decides
    their weights like everyone else's.

    With ``robust`` (default) every member but SeasonalNaive is wrapped in :class:`Robust`: fitted on
    history cleaned of outliers and holidays, with holiday effects re-applied (for MSTL over all the
    three years it looks at). SeasonalNaive stays the plain baseline.

    With ``include_lstm`` a :class:`GlobalLSTM` (``GlobalLSTM(**lstm_params)``, e.g. its caps on windows and
    epochs) is added last, wrapped in :class:`Robust` like the other learned members; it needs torch.
    """
    if include_lstm and not torch_available():
        raise ForecastInputError("include_lstm needs PyTorch: .venv/bin/pip install torch==2.13.0 (the Makefile "
                                 "does it), or leave the LSTM out.")
    mstl = MSTL(n_jobs=n_jobs, fill=fill)
    learned: list[BaseForecaster] = [
        ETS(n_jobs=n_jobs, fill=fill),
        ARIMA(n_jobs=n_jobs, fill=fill),
        Theta(n_jobs=n_jobs, fill=fill),
        GlobalGBM(country=country, n_jobs=n_jobs, seed=seed, fill=fill),
        mstl,
        DampedETS(n_jobs=n_jobs, fill=fill),
    ]
    if robust:  # MSTL looks at up to three years: clean all of them
        learned = [Robust(m, history_days=7 * mstl.max_history) if m is mstl else Robust(m) for m in learned]
    members: list[BaseForecaster] = [SeasonalNaive(fill=fill), *learned]
    if include_prophet:
        members.append(Prophet(country=country, n_jobs=n_jobs, seed=seed, fill=fill))
    if include_lstm:
        lstm = GlobalLSTM(n_jobs=n_jobs, seed=seed, fill=fill, **(lstm_params or {}))
        members.append(Robust(lstm) if robust else lstm)
    return members


class Ensemble(BaseForecaster):
    """Combination of members with weights chosen from a rolling-origin backtest, per group of series.

    Series with a full backtest are grouped by recent volume (``n_buckets`` quantile buckets) and
    by intermittency (at least 30% zeros in the last 28 days / 168 hours). Each group with at least
    ``min_group_size`` series picks, by its mean MASE over the backtest, the best of: the best
    single member, inverse-MASE weights over all members, inverse-MASE weights over the two
    best, and equal weights over the members within 10% of the best member's MASE. All other series with backtest rows form one "rest" group that chooses the same way, and
    series with no backtest at all get the weights chosen on all series (recorded in
    ``fallbacks``). Since the best single member is always a candidate, the ensemble's mean
    backtest MASE is never above the best member's (in-sample: weights are chosen on the same
    windows).

    Intervals are conformal (see :class:`ConformalCalibrator`) from the ensemble's own backtest
    errors, unless ``conformal=False`` (then the weighted average of the members' bounds).

    With ``refit=False`` (default, for scale) members are fitted once at the first cutoff and only
    conditioned on new history afterwards, including for the final forecast.

    Args:
        members: Forecasters to combine (default :func:`default_members`).
        include_prophet: Add Prophet to the default members (about 0.15-0.5 s per series and fit).
        include_lstm: Add :class:`GlobalLSTM` to the default members (PyTorch; one global training per fit).
        lstm_params: Keyword arguments of that GlobalLSTM, e.g. ``{"max_windows": 8000, "max_epochs": 12}``.
        backtest_h: Backtest horizon; conformal widths beyond it are extrapolated.
        n_windows: Backtest cutoffs.
        step: Steps between cutoffs (default ``backtest_h``).
        refit: Refit members at every cutoff and for the final forecast.
        n_buckets: Volume buckets.
        min_group_size: Smallest group that gets its own weights.
        conformal: Use conformal intervals.
        country: Holiday country for the default members.
        robust: Wrap the default learned members in :class:`Robust`.
        n_jobs: Processes/threads for the default members.
        seed: Seed for the default members.
        alias: Column name in backtests (default ``"Ensemble"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.

    Attributes:
        members_: Fitted members that carry weight for at least one series.
        weights_: One row per series: group, choice and one weight column per member.
        backtest_: The members' backtest frame plus an ``Ensemble`` column (in-sample weights).
    """

    _default_name = "Ensemble"
    _backtest_levels = (80, 95)

    def __init__(
        self,
        members: Sequence[BaseForecaster] | None = None,
        *,
        include_prophet: bool = False,
        include_lstm: bool = False,
        lstm_params: dict | None = None,
        backtest_h: int = 30,
        n_windows: int = 4,
        step: int | None = None,
        refit: bool = False,
        n_buckets: int = 4,
        min_group_size: int = 20,
        conformal: bool = True,
        country: str | None = "US",
        robust: bool = True,
        n_jobs: int = 1,
        seed: int = 0,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(alias=alias, fill=fill)
        self.members = members
        self.robust = robust
        self.include_prophet = include_prophet
        self.include_lstm = include_lstm
        self.lstm_params = lstm_params
        self.backtest_h = backtest_h
        self.n_windows = n_windows
        self.step = step
        self.refit = refit
        self.n_buckets = n_buckets
        self.min_group_size = min_group_size
        self.conformal = conformal
        self.country = country
        self.n_jobs = n_jobs
        self.seed = seed

    def _new_members(self) -> list[BaseForecaster]:
        if self.members is None:
            return default_members(
                include_prophet=self.include_prophet,
                country=self.country,
                n_jobs=self.n_jobs,
                seed=self.seed,
                fill=self.fill,
                robust=self.robust,
                include_lstm=self.include_lstm,
                lstm_params=self.lstm_params,
            )
        return [m.clone() for m in self.members]

    def _groups(self, panel: Panel, full: np.ndarray) -> np.ndarray:
        """Group label per series: volume bucket and intermittency, or ``"rest"``."""
        window = 28 if panel.freq == "D" else 168
        recent = panel.padded(window)
        volume = np.nanmean(np.abs(recent), axis=1)
        intermittent = np.nanmean(recent == 0, axis=1) >= 0.3
        labels = np.full(panel.n_series, "rest", dtype=object)
        if full.sum() >= self.min_group_size:
            edges = np.quantile(volume[full], np.linspace(0, 1, self.n_buckets + 1)[1:-1])
            bucket = np.searchsorted(edges, volume, side="right") + 1
            labels[full] = [
                f"volume-{b}of{self.n_buckets}" + ("-intermittent" if i else "")
                for b, i in zip(bucket[full], intermittent[full])
            ]
        names, counts = np.unique(labels, return_counts=True)
        labels[np.isin(labels, names[counts < self.min_group_size])] = "rest"
        return labels

    @staticmethod
    def _choose(
        preds: np.ndarray, y: np.ndarray, scale: np.ndarray, series: np.ndarray, names: list[str]
    ) -> tuple[np.ndarray, str]:
        """Pick weights for one group: best single member, an inverse-MASE combination, or equal weights
        over the members close to the best (a trimmed equal-weight combination, which often beats
        estimated weights out of sample: the "forecast combination puzzle").

        Args:
            preds: Member forecasts, (rows, n_members).
            y: Actuals per row.
            scale: MASE scale per row (> 0).
            series: Series position per row.
            names: Member names.

        Returns:
            Weights (n_members,) and a label of the choice.
        """
        _, inv = np.unique(series, return_inverse=True)
        counts = np.bincount(inv)

        def mean_mase(pred: np.ndarray) -> float:
            per_series = np.bincount(inv, np.abs(y - pred) / scale) / counts
            return float(per_series.mean())

        member_err = np.array([mean_mase(preds[:, j]) for j in range(preds.shape[1])])
        order = np.argsort(member_err, kind="stable")
        candidates = [(np.eye(len(names))[order[0]], f"best: {names[order[0]]}")]
        if len(names) > 1:
            inverse = 1 / np.maximum(member_err, 1e-12)
            top2 = np.where(np.isin(np.arange(len(names)), order[:2]), inverse, 0.0)
            candidates.append((top2 / top2.sum(), f"inverse-MASE, {names[order[0]]} + {names[order[1]]}"))
        if len(names) > 2:
            candidates.append((inverse / inverse.sum(), "inverse-MASE, all members"))
            close = member_err <= (1 + CLOSE_TO_BEST) * member_err[order[0]]
            if close.sum() > 2:
                candidates.append((close / close.sum(), f"equal, {int(close.sum())} members within "
                                   f"{CLOSE_TO_BEST:.0%} of the best"))
        errors = [mean_mase(preds @ w) for w, _ in candidates]
        return candidates[int(np.argmin(errors))]  # ties go to the simpler candidate

    def _fit_panel(self, panel: Panel, forward: bool = False) -> Ensemble:
        members = self._new_members()
        names = check_names(members)
        bh = feasible_backtest_h(panel, self.backtest_h, self.n_windows, self.step)
        if not bh:
            return self._fit_without_backtest(panel, members)
        if bh < self.backtest_h:
            logger.info("%s: backtest horizon shortened to %d steps to fit the history", self.name, bh)
        bt = backtest(panel, members, bh, self.n_windows, self.step, self._backtest_levels, self.refit)
        preds = np.column_stack([bt.forecasts[n][0] for n in names])
        usable = (bt.scale > 0) & np.isfinite(preds).all(axis=1)
        # distinct (series, window) pairs, counted per series
        windows_seen = np.bincount(
            np.unique(bt.series * self.n_windows + bt.window) // self.n_windows, minlength=panel.n_series
        )
        labels = self._groups(panel, windows_seen == self.n_windows)
        has_rows = np.bincount(bt.series[usable], minlength=panel.n_series) > 0
        weights = np.zeros((panel.n_series, len(names)))
        choice = np.empty(panel.n_series, dtype=object)
        row_label = labels[bt.series]
        if usable.any():
            w_all, c_all = self._choose(preds[usable], bt.y[usable], bt.scale[usable], bt.series[usable], names)
        else:
            w_all, c_all = np.eye(len(names))[0], f"best: {names[0]} (no backtest)"
        for label in np.unique(labels[has_rows]):
            rows = usable & (row_label == label)
            w, c = self._choose(preds[rows], bt.y[rows], bt.scale[rows], bt.series[rows], names)
            in_group = has_rows & (labels == label)
            weights[in_group], choice[in_group] = w, c
        no_rows = ~has_rows
        weights[no_rows], choice[no_rows], labels[no_rows] = w_all, c_all, "global"

        self.panel_ = panel
        self.fallbacks = [
            Fallback(panel.ids[i], self.name, "no usable backtest window", "global weights")
            for i in np.flatnonzero(no_rows)
        ]
        ens_bt = (weights[bt.series] * preds).sum(axis=1)
        self.calibrator_ = ConformalCalibrator(bt.y - ens_bt, bt.step, bt.scale, bh) if self.conformal else None
        if self.calibrator_ is not None and self.calibrator_.n_scores == 0:
            self.calibrator_ = None  # nothing to calibrate on: fall back to the members' bounds
        self._labels = labels
        self.cumulative_calibrator_, self.cumulative_group_calibrators_ = None, {}
        if self.calibrator_ is not None:  # errors of the running total from the cutoff, per backtest window
            order = np.lexsort((bt.step, bt.window, bt.series))
            running = np.empty_like(ens_bt)
            running[order] = (pd.Series((bt.y - ens_bt)[order]).groupby([bt.series[order], bt.window[order]], sort=False)
                              .cumsum(skipna=False).to_numpy())
            self.cumulative_calibrator_ = ConformalCalibrator(running, bt.step, bt.scale, bh, growth=1.0)
            # per group too: a total's error relative to daily noise differs by volume (level errors weigh
            # more in large, smooth series), so pooled quantiles under-cover large workspaces
            row_label = labels[bt.series]
            for label in np.unique(row_label):
                rows = row_label == label
                if np.unique(bt.series[rows]).size >= self.min_group_size:
                    self.cumulative_group_calibrators_[label] = ConformalCalibrator(
                        running[rows], bt.step[rows], bt.scale[rows], bh, growth=1.0)
        used = weights.any(axis=0)  # members never chosen are not refitted or forecast
        self.members_ = [m for m, u in zip(members, used) if u]
        for member in self.members_:
            member._fit_panel(panel, forward=not self.refit)
            self.fallbacks.extend(member.fallbacks)
        self._weights = weights[:, used]
        self._scale = mase_scale(panel)
        self.weights_ = pd.DataFrame({panel.id_col: panel.ids, "group": labels, "choice": choice}).join(
            pd.DataFrame(weights, columns=names)
        )
        self.backtest_ = bt.to_frame(panel)
        self.backtest_[self.name] = ens_bt
        logger.info("%s: %d series, choices %s", self.name, panel.n_series, pd.Series(choice).value_counts().to_dict())
        return self

    def _fit_without_backtest(self, panel: Panel, members: list[BaseForecaster]) -> Ensemble:
        """Too little history to backtest: use the first member (SeasonalNaive by default) alone."""
        logger.warning("%s: history too short for a backtest; using %s alone", self.name, members[0].name)
        members[0]._fit_panel(panel)
        names = [m.name for m in members]
        self.panel_, self.members_, self.calibrator_ = panel, members[:1], None
        self.cumulative_calibrator_, self.cumulative_group_calibrators_ = None, {}
        self._labels = np.full(panel.n_series, "global", dtype=object)
        self._weights = np.ones((panel.n_series, 1))
        self._scale = mase_scale(panel)
        self.fallbacks = list(members[0].fallbacks)
        choice = f"best: {names[0]} (no backtest)"
        self.weights_ = pd.DataFrame({panel.id_col: panel.ids, "group": "global", "choice": choice})
        self.weights_[names] = np.eye(len(names))[0]
        self.backtest_ = pd.DataFrame()
        return self

    def predict_arrays(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        if not hasattr(self, "members_"):
            raise ForecastInputError(f"{self.name} is not fitted yet; call fit(df, freq) before predict.")
        h, levels = check_horizon(h), [check_level(lv) for lv in levels]
        raw_levels = [] if self.calibrator_ is not None else list(levels)
        mean = np.zeros((self.panel_.n_series, h))
        bands = {lv: (np.zeros_like(mean), np.zeros_like(mean)) for lv in raw_levels}
        for j, member in enumerate(self.members_):
            w = self._weights[:, j][:, None]
            m_mean, m_bands = member.predict_arrays(h, raw_levels)
            mean += w * m_mean
            for lv in raw_levels:
                bands[lv][0][:] += w * m_bands[lv][0]
                bands[lv][1][:] += w * m_bands[lv][1]
        if self.calibrator_ is not None:
            bands = self.calibrator_.bands(mean, self._scale, levels)
        return finalise(self.panel_, mean, bands)

    def predict_cumulative(self, h: int, level: int = 95) -> pd.DataFrame:
        """Forecast of the running total from the first forecast step to each step, e.g. the credits of
        the next 30 days, with an interval calibrated for that total.

        Summing daily bounds gives a far too wide interval for a total, as daily errors partly cancel.
        Here the interval is split-conformal on the backtest's running-total errors, scaled per series
        like the daily ones, with quantiles per ensemble group (volume and intermittency; pooled for
        groups with fewer than ``min_group_size`` series): calibrated up to the backtest horizon, beyond
        it extrapolated linearly in the number of steps. Without a backtest the daily bounds are summed
        (conservative).

        Returns:
            Frame ``(unique_id, ds, yhat, yhat_lower, yhat_upper)``: ``yhat`` at ``ds`` is the forecast
            sum of the steps from the first one to ``ds``.
        """
        level = check_level(level)
        mean, bands = self.predict_arrays(h, [level])
        total = np.cumsum(mean, axis=1)
        if self.cumulative_calibrator_ is not None:
            lower, upper = self.cumulative_calibrator_.bands(total, self._scale, [level])[level]
            for label, calibrator in self.cumulative_group_calibrators_.items():
                rows = self._labels == label
                lower[rows], upper[rows] = calibrator.bands(total[rows], self._scale[rows], [level])[level]
            total_bands = {level: (lower, upper)}
        else:
            total_bands = {level: tuple(np.cumsum(b, axis=1) for b in bands[level])}
        total, total_bands = finalise(self.panel_, total, total_bands)
        return self.panel_.forecast_frame(total, *total_bands[level])
