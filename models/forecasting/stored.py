"""Scoring with a trained Ensemble's stored choices: training and scoring split.

Training (:class:`Ensemble` with its rolling-origin backtest) decides, per series, the members' weights, and
calibrates the conformal intervals on the backtest errors. :func:`ensemble_state` keeps exactly that as plain
frames (JSON/Parquet, no pickles); :class:`StoredEnsemble` takes it and, on the latest history, only refits the
members each series needs (each member on the series that give it weight) and combines them with the stored
weights and interval calibration. It runs no backtest.

Members that search a specification per series (AutoETS's model string in ETS and MSTL's trend, AutoARIMA's orders
with ``ARIMA(auto=True)``) have the one training chose stored too (``specs``); scoring fits that specification on the
latest history without the search (:meth:`BaseForecaster.set_specs`). A state without specs (an older artifact)
searches as training did.

Series the state does not know (e.g. a workspace created after training) get the **default weights**: the mean
of the stored per-series weights (the ensemble's average mix), with the pooled interval calibration (group
``"global"``); they are listed in ``unknown_``.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .base import BaseForecaster, Fallback
from .checks import ForecastInputError
from .ensemble import ConformalCalibrator, Ensemble
from .panel import Panel, mase_scale

DAILY, CUMULATIVE = "daily", "cumulative"
UNKNOWN_GROUP = "global"


@dataclass
class EnsembleState:
    """What scoring needs from a trained Ensemble.

    Attributes:
        weights: One row per series: ``unique_id``, ``group``, ``choice`` and one weight column per member.
        calibration: Conformal scores, one row per (``calibrator``, ``step``, ``score``); ``calibrator`` is
            ``daily``, ``cumulative`` or ``cumulative|<group>``.
        meta: ``members`` (names, in order), ``calibrators`` (name -> ``h``, ``min_pool``, ``growth``).
        specs: One row per (``unique_id``, ``member``) whose fit chose a specification by search: ``spec``
            (:meth:`BaseForecaster.fitted_specs`); empty: scoring searches.
    """

    weights: pd.DataFrame
    calibration: pd.DataFrame
    meta: dict = field(default_factory=dict)
    specs: pd.DataFrame = field(default_factory=lambda: empty_specs())

    @property
    def members(self) -> list[str]:
        return list(self.meta["members"])

    def default_weights(self) -> np.ndarray:
        """Weights for series the state does not know: the mean stored mix, normalised."""
        w = self.weights[self.members].to_numpy(float).mean(axis=0) if len(self.weights) else np.zeros(0)
        if w.size == 0 or w.sum() <= 0:
            w = np.eye(len(self.members))[0]
        return w / w.sum()


def empty_specs() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": pd.Series(dtype=str), "member": pd.Series(dtype=str),
                         "spec": pd.Series(dtype=str)})


def member_specs(members: Sequence[BaseForecaster]) -> pd.DataFrame:
    """``(unique_id, member, spec)``: the specification each fitted member's search chose per series."""
    rows = [(str(uid), m.name, spec) for m in members for uid, spec in m.fitted_specs().items()]
    return pd.DataFrame(rows, columns=["unique_id", "member", "spec"]).astype(str) if rows else empty_specs()


def _calibrator_rows(name: str, cal: ConformalCalibrator) -> pd.DataFrame:
    steps = np.concatenate([np.full(s.size, k) for k, s in enumerate(cal.scores)]) if cal.scores else []
    scores = np.concatenate(cal.scores) if cal.scores else []
    return pd.DataFrame({"calibrator": name, "step": np.asarray(steps, np.int64), "score": np.asarray(scores, float)})


def ensemble_state(model: Ensemble) -> EnsembleState:
    """The stored form of a fitted :class:`Ensemble` (weights, groups, interval calibration)."""
    if not hasattr(model, "weights_"):
        raise ForecastInputError("ensemble_state needs a fitted Ensemble; call fit(df, freq) first.")
    id_col = model.panel_.id_col
    weights = model.weights_.rename(columns={id_col: "unique_id"}).copy()
    members = [c for c in weights.columns if c not in ("unique_id", "group", "choice")]
    weights["unique_id"] = weights["unique_id"].astype(str)
    cals: dict[str, ConformalCalibrator] = {}
    if model.calibrator_ is not None:
        cals[DAILY] = model.calibrator_
    if model.cumulative_calibrator_ is not None:
        cals[CUMULATIVE] = model.cumulative_calibrator_
    for label, cal in model.cumulative_group_calibrators_.items():
        cals[f"{CUMULATIVE}|{label}"] = cal
    frames = [_calibrator_rows(n, c) for n, c in cals.items()]
    calibration = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"calibrator": pd.Series(dtype=str), "step": pd.Series(dtype=np.int64), "score": pd.Series(dtype=float)})
    meta = {"members": members,
            "calibrators": {n: {"h": int(c.h), "min_pool": int(c.min_pool), "growth": float(c.growth)}
                            for n, c in cals.items()}}
    return EnsembleState(weights=weights[["unique_id", "group", "choice", *members]], calibration=calibration,
                         meta=meta, specs=member_specs(model.members_))


def _calibrator(state: EnsembleState, name: str) -> ConformalCalibrator | None:
    spec = state.meta.get("calibrators", {}).get(name)
    if spec is None:
        return None
    rows = state.calibration[state.calibration["calibrator"] == name]
    cal = ConformalCalibrator.__new__(ConformalCalibrator)  # from stored scores, not from errors
    cal.h, cal.min_pool, cal.growth = int(spec["h"]), int(spec["min_pool"]), float(spec["growth"])
    by_step = {int(k): np.sort(g["score"].to_numpy(float)) for k, g in rows.groupby("step")}
    cal.scores = [by_step.get(k, np.zeros(0)) for k in range(cal.h)]
    return cal


class _OnRows:
    """A member fitted on some rows of the panel; the other rows get 0 (they give it no weight)."""

    def __init__(self, member: BaseForecaster, rows: np.ndarray, n_series: int):
        self.member, self.rows, self.n_series, self.name = member, rows, n_series, member.name
        self.fallbacks = member.fallbacks

    def predict_arrays(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        sub_mean, sub_bands = self.member.predict_arrays(h, levels)
        mean = np.zeros((self.n_series, h))
        mean[self.rows] = sub_mean
        bands = {}
        for lv, (lo, hi) in sub_bands.items():
            full_lo, full_hi = np.zeros_like(mean), np.zeros_like(mean)
            full_lo[self.rows], full_hi[self.rows] = lo, hi
            bands[lv] = (full_lo, full_hi)
        return mean, bands


class StoredEnsemble(Ensemble):
    """An :class:`Ensemble` that takes its weights and intervals from a stored state instead of a backtest.

    Args:
        state: From :func:`ensemble_state` of the trained Ensemble.
        members: Unfitted members with the state's names (e.g. ``Ensemble(**params)._new_members()`` of the
            training configuration); members with no weight on any series are not fitted.
        alias: Column name (default ``"Ensemble"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.

    Attributes:
        unknown_: Ids of the series scored with the default weights (not in the state).
        fitted_members_: Member name -> number of series it was fitted on.
        fixed_specs_: Member name -> number of those series given their stored specification (no search).
        member_seconds_: Member name -> seconds its fit took.
    """

    def __init__(self, state: EnsembleState, members: Sequence[BaseForecaster], *, alias: str | None = None,
                 fill: str | None = "zero"):
        super().__init__(members=members, alias=alias, fill=fill)
        self.state = state

    def clone(self) -> StoredEnsemble:
        return StoredEnsemble(self.state, [m.clone() for m in self.members], alias=self.alias, fill=self.fill)

    def _fit_panel(self, panel: Panel, forward: bool = False) -> StoredEnsemble:
        names = self.state.members
        by_name = {m.name: m for m in self._new_members()}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ForecastInputError(f"The stored ensemble uses members {missing} that were not given; pass the "
                                     f"training configuration's members ({sorted(by_name)} given).")
        stored = self.state.weights.set_index("unique_id")
        ids = pd.Index(panel.ids.astype(str))
        known = ids.isin(stored.index)
        weights = np.tile(self.state.default_weights(), (panel.n_series, 1))
        labels = np.full(panel.n_series, UNKNOWN_GROUP, dtype=object)
        if known.any():
            rows = stored.loc[ids[known]]
            weights[known] = rows[names].to_numpy(float)
            labels[known] = rows["group"].to_numpy(object)
        self.unknown_ = [str(i) for i in ids[~known]]
        self.fallbacks = [Fallback(i, self.name, "not in the trained model", "default weights") for i in self.unknown_]
        self.members_, used, self.fitted_members_, self.member_seconds_ = [], [], {}, {}
        self.fixed_specs_ = {}
        specs = self.state.specs
        for j, name in enumerate(names):
            rows = np.flatnonzero(weights[:, j] > 0)
            if not rows.size:
                continue
            member = by_name[name]
            mine = specs[specs["member"] == name]
            if len(mine):
                mine = dict(zip(mine["unique_id"], mine["spec"]))
                member.set_specs(mine)
                self.fixed_specs_[name] = int(ids[rows].isin(list(mine)).sum())
            t0 = time.perf_counter()
            member._fit_panel(panel.take(rows) if rows.size < panel.n_series else panel)
            self.member_seconds_[name] = time.perf_counter() - t0
            self.fallbacks.extend(member.fallbacks)
            self.members_.append(member if rows.size == panel.n_series else _OnRows(member, rows, panel.n_series))
            self.fitted_members_[name] = int(rows.size)
            used.append(j)
        self.panel_ = panel
        self._weights = weights[:, used]
        self._labels = labels
        self._scale = mase_scale(panel)
        self.calibrator_ = _calibrator(self.state, DAILY)
        self.cumulative_calibrator_ = _calibrator(self.state, CUMULATIVE)
        self.cumulative_group_calibrators_ = {
            n.split("|", 1)[1]: _calibrator(self.state, n)
            for n in self.state.meta.get("calibrators", {}) if n.startswith(f"{CUMULATIVE}|")}
        self.weights_ = pd.DataFrame({panel.id_col: panel.ids, "group": labels}).join(
            pd.DataFrame(weights, columns=names))
        self.backtest_ = pd.DataFrame()
        return self
