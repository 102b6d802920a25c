"""A trained PeakForecaster's state, and scoring with it without backtests (training split from scoring).

Training (:class:`~models.peaks.PeakForecaster` ``fit``) backtests the members, chooses a candidate per group and
collects each series' backtest error blocks for the sample paths. :func:`peak_state` keeps what scoring needs as
plain frames (Parquet-ready, no pickles):

* ``choices``: per series its group and chosen candidate (``"+"``-joined members, ``DailyProfile`` for a short
  series);
* ``groups``: per group the candidate it chose, plus the overall choice (group ``"*"``);
* ``blocks``: per series its valid error blocks (``unique_id``, ``block``, ``h0`` .. ``h23``: errors in units of
  the series' mean hourly level, by hour of day of the series' clock).

:class:`StoredPeakForecaster` ``fit`` reads the latest history (the members' window, the groups and scales as
training computes them) and runs no backtest: each series forecasts with its stored candidate, and its paths
draw from its stored blocks and its group's stored pool (the same rule as training). On the training data it
gives training's point forecast and paths exactly.

Series the state does not know (``unknown_``) take their current group's stored choice (else the overall one)
and draw their paths from the group's pool only; a series stored as short (``DailyProfile``) that now has
``min_weeks`` of history takes its group's choice too (``regrouped_``). Short series still get the daily
profile, listed in ``fallbacks``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .forecaster import Fallback, PeakForecaster, _groups, _hours_matrix
from .members import DAY, WEEK, DailyProfile

HOUR_COLUMNS = [f"h{k}" for k in range(DAY)]
OVERALL = "*"


@dataclass
class PeakState:
    """What scoring needs of a fitted PeakForecaster (module docstring)."""

    choices: pd.DataFrame
    groups: pd.DataFrame
    blocks: pd.DataFrame

    def __post_init__(self) -> None:
        for name, frame, cols in (("choices", self.choices, {"unique_id", "group", "choice"}),
                                  ("groups", self.groups, {"group", "choice"}),
                                  ("blocks", self.blocks, {"unique_id", "block", *HOUR_COLUMNS})):
            missing = cols - set(frame.columns)
            if missing:
                raise ValueError(f"PeakState.{name} lacks columns {sorted(missing)}: build it with peak_state(model).")


def peak_state(model: PeakForecaster) -> PeakState:
    """The scoring state of a fitted PeakForecaster: per-series choices, group choices and error blocks."""
    choices = model.weights()[["unique_id", "group", "choice"]]
    groups = pd.concat([model.choice_table_[["group", "choice"]],
                        pd.DataFrame({"group": [OVERALL], "choice": ["+".join(model.overall_choice_)]})],
                       ignore_index=True)
    valid = ~np.isnan(model.blocks_).any(axis=2)
    rows, cols = np.nonzero(valid)
    blocks = pd.DataFrame(model.blocks_[rows, cols], columns=HOUR_COLUMNS)
    blocks.insert(0, "block", cols.astype("int64"))
    blocks.insert(0, "unique_id", np.asarray(model.ids_)[rows])
    return PeakState(choices=choices, groups=groups, blocks=blocks)


@dataclass
class StoredPeakForecaster(PeakForecaster):
    """A PeakForecaster that scores with a stored :class:`PeakState` (module docstring); no backtest.

    Args:
        state: The training run's state (``peak_state``).
        Others: as :class:`~models.peaks.PeakForecaster` (the training run's parameters).
    """

    state: PeakState | None = None
    unknown_: list = field(default_factory=list, init=False)
    regrouped_: list = field(default_factory=list, init=False)

    name = "PeakEnsemble"

    def fit(self, df: pd.DataFrame, freq: str = "h") -> StoredPeakForecaster:
        """Read the latest history and attach each series' stored choice and error blocks."""
        if self.state is None:
            raise ValueError("StoredPeakForecaster needs state=peak_state(trained model).")
        if freq != "h":
            raise ValueError(f"PeakForecaster forecasts hourly series: freq must be 'h', got {freq!r}.")
        missing = {"unique_id", "ds", "y"} - set(df.columns)
        if missing:
            raise ValueError(f"Input lacks columns {sorted(missing)}: give a long frame (unique_id, ds, y).")
        width = (self.history_weeks + self.n_windows) * WEEK  # the width training used: same groups and scales
        self.ids_, self.ends_, self.lengths_, self.hist_ = _hours_matrix(df, width)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.scale_ = np.maximum(np.nan_to_num(np.nanmean(self.hist_[:, -4 * WEEK:], axis=1)), 1e-6)
        self.group_ = _groups(self.hist_)
        self.short_ = self.lengths_ < self.min_weeks * WEEK
        self.fallbacks = [Fallback(self.ids_[i], self.name, f"less than {self.min_weeks} weeks of hourly history "
                                   f"({int(self.lengths_[i])} hours): daily-profile model", "DailyProfile")
                          for i in np.flatnonzero(self.short_)]
        st = self.state
        stored = dict(zip(st.choices["unique_id"].astype(str), st.choices["choice"]))
        by_group = dict(zip(st.groups["group"], st.groups["choice"]))
        overall = by_group.get(OVERALL, "+".join(self.members))
        self.unknown_, self.regrouped_, combos = [], [], []
        for i, uid in enumerate(self.ids_):
            if self.short_[i]:
                combos.append(("DailyProfile",))
                continue
            choice = stored.get(str(uid))
            if choice is None:
                self.unknown_.append(uid)
            elif choice == "DailyProfile":
                self.regrouped_.append(uid)
            if choice is None or choice == "DailyProfile":
                choice = by_group.get(self.group_[i], overall)
            combos.append(tuple(choice.split("+")))
        unknown_members = sorted({m for c in combos for m in c} - {*self.members, "DailyProfile"})
        if unknown_members:
            raise ValueError(f"stored choices use members {unknown_members} not in members={self.members}: "
                             "score with the training run's parameters.")
        self.combos_ = combos
        self._stored_blocks()
        return self

    def _stored_blocks(self) -> None:
        st = self.state
        blocks = st.blocks.assign(unique_id=st.blocks["unique_id"].astype(str)).sort_values(["unique_id", "block"])
        values = blocks[HOUR_COLUMNS].to_numpy(dtype=float)
        ids = blocks["unique_id"].to_numpy()
        n = len(self.ids_)
        uniq, first = np.unique(ids, return_index=True)
        starts = dict(zip(uniq, zip(first, np.r_[first[1:], len(ids)])))
        width = max((b - a for a, b in starts.values()), default=0)
        self.blocks_ = np.full((n, max(width, 1), DAY), np.nan)
        for i, uid in enumerate(self.ids_):
            if str(uid) in starts:
                a, b = starts[str(uid)]
                self.blocks_[i, :b - a] = values[a:b]
        self.n_blocks_ = (~np.isnan(self.blocks_).any(axis=2)).sum(axis=1)
        group_of = dict(zip(st.choices["unique_id"].astype(str), st.choices["group"]))
        groups = np.array([group_of.get(u, "") for u in ids], dtype=object)
        self.group_pool_ = {g: values[groups == g] for g in set(group_of.values())}
        self.all_pool_ = values if len(values) else np.zeros((1, DAY))

    def weights(self) -> pd.DataFrame:
        """Per series: its group, the candidate it scores with and each member's weight."""
        return pd.DataFrame([{"unique_id": uid, "group": self.group_[i], "choice": "+".join(combo),
                              **{m: (1 / len(combo) if m in combo else 0.0) for m in (*self.members, "DailyProfile")}}
                             for i, (uid, combo) in enumerate(zip(self.ids_, self.combos_))])

    def point_forecast(self, h: int) -> np.ndarray:
        """(n, h) point forecast: each series' stored candidate (only the members some series uses are run)."""
        n = len(self.ids_)
        out = np.zeros((n, h))
        long_rows = np.flatnonzero(~self.short_)
        if len(long_rows):
            combos = [self.combos_[i] for i in long_rows]
            used = [m for m in self.members if any(m in c for c in combos)]
            fc = {m: self._member_forecast(m, self.hist_[long_rows], self.ends_[long_rows], h) for m in used}
            for combo in set(combos):
                sel = np.array([c == combo for c in combos])
                out[long_rows[sel]] = self._combo(combo, {m: fc[m][sel] for m in combo})
        short = np.flatnonzero(self.short_)
        if len(short):
            out[short] = DailyProfile().forecast(self.hist_[short], self.ends_[short], h)
        return np.maximum(out, 0.0)
