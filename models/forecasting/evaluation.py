"""Rolling-origin backtests and accuracy metrics."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from .base import BaseForecaster
from .checks import ForecastInputError, check_horizon, check_level
from .panel import Panel, mase_scale

_KEY_COLS = ("cutoff", "y")
_shared_windows: dict | None = None


@contextmanager
def shared_backtest_windows() -> Iterator[dict]:
    """Within this block, refitting backtests reuse forecasts of windows they have already computed.

    A window's forecast depends only on the model (its parameters) and the training panel, so two
    backtests whose windows share a cutoff, e.g. a holdout ensemble fitted up to D - 30 and the
    production ensemble fitted up to D, compute the shared windows once. Keys are the model's repr,
    a hash of the training panel, ``h`` and the levels. Forward-conditioned backtests (``refit=False``)
    are not shared, since their state depends on earlier windows.
    """
    global _shared_windows
    outer = _shared_windows
    _shared_windows = {} if outer is None else outer
    try:
        yield _shared_windows
    finally:
        _shared_windows = outer


def _panel_key(panel: Panel) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (panel.ids.astype(str), panel.indptr, panel.start, panel.y):
        digest.update(np.ascontiguousarray(part).tobytes())
    digest.update(panel.freq.encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- metrics


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute percentage error as a fraction, over non-zero actuals only (NaN if none)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    nz = y != 0
    return float(np.mean(np.abs(y[nz] - yhat[nz]) / np.abs(y[nz]))) if nz.any() else np.nan


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE, ``2|e| / (|y| + |yhat|)``, in [0, 2]; a step where both are 0 counts as 0."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    denom = np.abs(y) + np.abs(yhat)
    return float(np.mean(np.where(denom > 0, 2 * np.abs(y - yhat) / np.where(denom > 0, denom, 1), 0.0)))


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute error divided by ``scale``, the in-sample seasonal-naive MAE (NaN if 0)."""
    mae = float(np.mean(np.abs(np.asarray(y, float) - np.asarray(yhat, float))))
    return mae / scale if scale > 0 else np.nan


def wape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Weighted absolute percentage error: ``sum|e| / sum|y|`` (NaN if all actuals are 0)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    total = np.abs(y).sum()
    return float(np.abs(y - yhat).sum() / total) if total > 0 else np.nan


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside ``[lower, upper]``."""
    y = np.asarray(y, float)
    return float(np.mean((y >= np.asarray(lower, float)) & (y <= np.asarray(upper, float))))


# --------------------------------------------------------------------------- backtests


@dataclass
class Backtest:
    """Backtest forecasts as flat arrays, one entry per (series, window, step).

    Attributes:
        series: Position of the series in the panel.
        window: Window number, 0 = earliest cutoff.
        step: Steps ahead minus one (0 = first forecast step).
        ds: Timestamp forecast.
        cutoff: Last training timestamp of the series in that window.
        y: Actual value.
        scale: MASE scale of the window's training data (see :func:`base.mase_scale`).
        forecasts: Model name to ``(mean, {level: (lower, upper)})``.
    """

    series: np.ndarray
    window: np.ndarray
    step: np.ndarray
    ds: np.ndarray
    cutoff: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    forecasts: dict[str, tuple[np.ndarray, dict]]

    def to_frame(self, panel: Panel) -> pd.DataFrame:
        """Nixtla-style frame ``(unique_id, ds, cutoff, y, <model>, <model>-lo-<level>, <model>-hi-<level>...)``."""
        out = pd.DataFrame(
            {
                panel.id_col: panel.ids[self.series],
                panel.time_col: panel.datetime_index(self.ds),
                "cutoff": panel.datetime_index(self.cutoff),
                "y": self.y,
            }
        )
        for name, (mean, bands) in self.forecasts.items():
            out[name] = mean
            for lv, (lo, hi) in bands.items():
                out[f"{name}-lo-{lv}"], out[f"{name}-hi-{lv}"] = lo, hi
        return out


def check_names(models: Sequence[BaseForecaster]) -> list[str]:
    """Model names, which must be unique because they become column names."""
    if not models:
        raise ForecastInputError("Pass at least one model, e.g. models=[SeasonalNaive(), ETS()].")
    names = [m.name for m in models]
    for name in names:
        if names.count(name) > 1 or name in _KEY_COLS:
            raise ForecastInputError(
                f"Model names must be unique and differ from 'cutoff' and 'y': {name!r} is not. "
                f"You can use `alias`, e.g. ETS(alias='ETS_2')."
            )
    return names


def backtest(
    panel: Panel,
    models: Sequence[BaseForecaster],
    h: int,
    n_windows: int = 4,
    step: int | None = None,
    levels: Sequence[int] = (),
    refit: bool = True,
) -> Backtest:
    """Rolling-origin backtest on a validated panel (see :func:`cross_validation`)."""
    names = check_names(models)
    h = check_horizon(h)
    step = h if step is None else check_horizon(step)
    if not isinstance(n_windows, (int, np.integer)) or n_windows < 1:
        raise ForecastInputError(f"n_windows must be a positive integer, got {n_windows!r}.")
    fields: dict[str, list] = {f: [] for f in ("series", "window", "step", "ds", "cutoff", "y", "scale")}
    means: dict[str, list] = {name: [] for name in names}
    bands: dict[str, dict] = {name: {lv: ([], []) for lv in levels} for name in names}
    for w in range(n_windows):
        train, idx = panel.drop_last(h + (n_windows - 1 - w) * step)
        if train.n_series == 0:
            continue
        offsets = np.tile(np.arange(h), train.n_series)
        fields["series"].append(np.repeat(idx, h))
        fields["window"].append(np.full(offsets.size, w))
        fields["step"].append(offsets)
        fields["ds"].append(train.future_timestamps(h).ravel())
        fields["cutoff"].append(np.repeat(train.end, h))
        fields["y"].append(panel.y[np.repeat(panel.indptr[idx] + train.lengths, h) + offsets])
        fields["scale"].append(np.repeat(mase_scale(train), h))
        train_key = _panel_key(train) if refit and _shared_windows is not None else None
        for model in models:
            key = (repr(model), train_key, h, tuple(levels))
            if train_key is not None and key in _shared_windows:
                mean, model_bands = _shared_windows[key]
            else:
                model._fit_panel(train, forward=not refit and len(fields["y"]) > 1)
                mean, model_bands = model.predict_arrays(h, levels)
                if train_key is not None:
                    _shared_windows[key] = (mean, model_bands)
            means[model.name].append(mean.ravel())
            for lv, (lo, hi) in model_bands.items():
                bands[model.name][lv][0].append(lo.ravel())
                bands[model.name][lv][1].append(hi.ravel())
    if not fields["y"]:
        raise ForecastInputError(
            f"No series has more than {h + (n_windows - 1) * step} points, so no backtest window fits. "
            f"Use a smaller h, step or n_windows."
        )
    forecasts = {
        name: (
            np.concatenate(means[name]),
            {lv: (np.concatenate(lo), np.concatenate(hi)) for lv, (lo, hi) in bands[name].items()},
        )
        for name in names
    }
    return Backtest(**{f: np.concatenate(v) for f, v in fields.items()}, forecasts=forecasts)


def cross_validation(
    df: pd.DataFrame,
    models: Sequence[BaseForecaster],
    h: int,
    n_windows: int = 4,
    step: int | None = None,
    freq: str = "D",
    level: int | Sequence[int] = 95,
    *,
    refit: bool = True,
    fill: str | None = "zero",
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> pd.DataFrame:
    """Rolling-origin backtest: forecast ``h`` steps from ``n_windows`` cutoffs per series.

    Window ``w`` (0 = earliest) trains on each series minus its last
    ``h + (n_windows - 1 - w) * step`` points, so cutoffs are relative to each series' own end;
    series too short for a window are left out of it. Models are left fitted on the last window.

    Args:
        df: Long frame ``(unique_id, ds, y)``.
        models: Forecasters with unique ``name`` (use ``alias`` to rename).
        h: Steps forecast from each cutoff.
        n_windows: Number of cutoffs.
        step: Steps between cutoffs (default ``h``).
        freq: ``"D"`` or ``"h"``.
        level: Interval confidence(s) in percent.
        refit: Refit at every cutoff. With False, models are fitted at the first cutoff and later
            only conditioned on new history (parameters kept), as statsforecast's ``refit=False``.
        fill: Gap handling, see :meth:`Panel.from_frame`.
        id_col: Series id column.
        time_col: Timestamp column.
        target_col: Value column.

    Returns:
        Frame ``(unique_id, ds, cutoff, y, <model>, <model>-lo-<level>, <model>-hi-<level>, ...)``.
    """
    levels = [check_level(lv) for lv in ([level] if np.isscalar(level) else level)]
    panel = Panel.from_frame(df, freq, fill, id_col, time_col, target_col)
    return backtest(panel, models, h, n_windows, step, levels, refit).to_frame(panel)


def _row_scales(train: Panel, ids: np.ndarray, cutoff: pd.Series) -> np.ndarray:
    """MASE scale of each backtest row: seasonal-naive MAE of its series' history up to its cutoff."""
    if cutoff.dt.tz is not None:
        cutoff = cutoff.dt.tz_localize(None)
    pos = pd.Index(train.ids).get_indexer(ids)
    known = pos >= 0
    cut = cutoff.to_numpy("datetime64[ns]")[known].astype(np.int64)
    pairs, inverse = np.unique(np.column_stack([pos[known], cut]), axis=0, return_inverse=True)
    idx = pairs[:, 0]
    keep = np.clip((pairs[:, 1].astype("datetime64[ns]") - train.start[idx]) // train.step + 1, 1, train.lengths[idx])
    out = np.full(ids.size, np.nan)
    out[known] = mase_scale(train.head(idx, keep))[inverse.ravel()]
    return out


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`.

    Attributes:
        per_series: One row per (series, model): mape, smape, mase, wape and coverage_<level>.
        summary: One row per model: mean mape/smape/mase over series, median mase, pooled wape
            (volume weighted) and pooled coverage_<level>.
    """

    per_series: pd.DataFrame
    summary: pd.DataFrame


def evaluate(
    cv_df: pd.DataFrame,
    train_df: pd.DataFrame | None = None,
    freq: str = "D",
    *,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Evaluation:
    """Accuracy and interval coverage per series and per model from a backtest frame.

    Args:
        cv_df: Output of :func:`cross_validation`.
        train_df: The history given to the backtest; needed for MASE. Each row's error is divided
            by its series' in-sample seasonal-naive MAE (season 7 daily, 24 hourly) up to that
            row's cutoff, and a series' MASE is the mean over its rows. Without it mase is NaN.
        freq: ``"D"`` or ``"h"`` (for the MASE scale).
        id_col: Series id column.
        time_col: Timestamp column of ``train_df``.
        target_col: Value column of ``train_df``.

    Returns:
        An :class:`Evaluation` with per-series and summary frames.
    """
    for col in (id_col, "cutoff", "y"):
        if col not in cv_df.columns:
            raise ForecastInputError(f"Column '{col}' is missing; pass the frame returned by cross_validation.")
    models = [
        c for c in cv_df.columns if c not in (id_col, time_col, *_KEY_COLS) and "-lo-" not in c and "-hi-" not in c
    ]
    levels = sorted({int(c.rsplit("-", 1)[1]) for c in cv_df.columns if "-lo-" in c})
    ids = cv_df[id_col]
    scale = np.full(len(cv_df), np.nan)
    if train_df is not None:
        train = Panel.from_frame(train_df, freq, "zero", id_col, time_col, target_col)
        scale = _row_scales(train, ids.to_numpy(), cv_df["cutoff"])
    y = cv_df["y"].to_numpy(float)
    per_series, summary = [], []
    for name in models:
        model_levels = [lv for lv in levels if f"{name}-lo-{lv}" in cv_df.columns]
        err = np.abs(y - cv_df[name].to_numpy(float))
        denom = np.abs(y) + np.abs(cv_df[name].to_numpy(float))
        rows = pd.DataFrame(
            {
                "abs_err": err,
                "ape": np.where(y != 0, err / np.where(y != 0, np.abs(y), 1), np.nan),
                "sape": np.where(denom > 0, 2 * err / np.where(denom > 0, denom, 1), 0.0),
                "abs_y": np.abs(y),
                "scaled_err": np.where(scale > 0, err / np.where(scale > 0, scale, 1), np.nan),
                **{
                    f"coverage_{lv}": (y >= cv_df[f"{name}-lo-{lv}"]) & (y <= cv_df[f"{name}-hi-{lv}"])
                    for lv in model_levels
                },
            }
        )
        g = rows.groupby(ids.to_numpy(), sort=True)
        sums = g[["abs_err", "abs_y"]].sum()
        stats = pd.DataFrame(
            {
                "mape": g["ape"].mean(),
                "smape": g["sape"].mean(),
                "mase": g["scaled_err"].mean(),
                "wape": sums["abs_err"] / sums["abs_y"].where(sums["abs_y"] > 0),
                **{f"coverage_{lv}": g[f"coverage_{lv}"].mean() for lv in model_levels},
            }
        )
        per_series.append(stats.rename_axis(id_col).reset_index().assign(model=name))
        summary.append(
            {
                "model": name,
                "mape": stats["mape"].mean(),
                "smape": stats["smape"].mean(),
                "mase": stats["mase"].mean(),
                "mase_median": stats["mase"].median(),
                "wape": rows["abs_err"].sum() / rows["abs_y"].sum() if rows["abs_y"].sum() > 0 else np.nan,
                **{f"coverage_{lv}": rows[f"coverage_{lv}"].mean() for lv in model_levels},
            }
        )
    per_series_df = pd.concat(per_series, ignore_index=True)
    first = [id_col, "model"]
    per_series_df = per_series_df[first + [c for c in per_series_df.columns if c not in first]]
    return Evaluation(per_series_df, pd.DataFrame(summary))
