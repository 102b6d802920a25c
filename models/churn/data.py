"""Churn training data: snapshot rows, labels, the minimum-data rule and time-to-lapse targets.

A training row is a point-in-time snapshot of one user's behaviour as of a date ``T``; its label is 1
when the user has no activity in ``(T, T + 30 days]`` (churned) and 0 otherwise. Nothing here depends
on how the rows were made or which feature set they come from.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

KEYS = ("workspace_id", "user_id")


class InsufficientDataError(ValueError):
    """Too few churned or retained training rows; the pipeline records an "insufficient data" status.

    Attributes:
        counts: ``{"churned": int, "retained": int}``.
        min_per_class: The minimum that was required for each class.
    """

    def __init__(self, counts: dict[str, int], min_per_class: int):
        self.counts = counts
        self.min_per_class = min_per_class
        super().__init__(
            f"insufficient data: {counts['churned']} churned and {counts['retained']} retained rows, "
            f"need at least {min_per_class} of each. Add snapshot dates or lower min_per_class."
        )


def check_sufficient(y: Sequence[int] | pd.Series, min_per_class: int = 100) -> tuple[bool, dict[str, int]]:
    """Check that both classes have enough rows to train and calibrate on.

    Args:
        y: Labels, 1 = churned, 0 = retained.
        min_per_class: Minimum rows needed in each class.

    Returns:
        ``(ok, {"churned": n1, "retained": n0})``.
    """
    labels = _labels(y)
    counts = {"churned": int(labels.sum()), "retained": int(len(labels) - labels.sum())}
    return min(counts.values()) >= min_per_class, counts


def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("labels must be 0 (retained) or 1 (churned)")
    return arr.astype(np.int8)


def _iso(ts: Any) -> str:
    return pd.Timestamp(ts).date().isoformat()


@dataclass
class TrainingSet:
    """Snapshot rows for training, aligned by position.

    Attributes:
        X: Numeric feature columns, one row per user snapshot.
        y: 1 = churned (no activity in the 30 days after ``as_of``), 0 = retained.
        as_of: Snapshot date of each row, kept outside ``X`` for time-based splits.
        keys: ``workspace_id`` and ``user_id`` of each row.
        days_to_inactivity: Optional target for the time-to-churn model
            (:class:`~models.churn.time_to_churn.TimeToChurnModel`), as made by
            :func:`inactivity_targets`: ``1..window`` = the user's lapse starts that many days after
            ``as_of``; ``inf`` = no lapse starts within the window; NaN = not known yet (row skipped).
    """

    X: pd.DataFrame
    y: pd.Series
    as_of: pd.Series
    keys: pd.DataFrame
    days_to_inactivity: pd.Series | None = None

    def __post_init__(self) -> None:
        n = len(self.X)
        sizes = {"y": len(self.y), "as_of": len(self.as_of), "keys": len(self.keys)}
        if self.days_to_inactivity is not None:
            sizes["days_to_inactivity"] = len(self.days_to_inactivity)
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"TrainingSet parts must all have len(X) = {n} rows; got {wrong}")
        missing = [k for k in KEYS if k not in self.keys.columns]
        if missing:
            raise ValueError(f"keys must have columns {list(KEYS)}; missing {missing}")
        _labels(self.y)
        self.as_of = pd.Series(pd.to_datetime(np.asarray(self.as_of)), index=self.X.index, name="as_of")

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        label: str = "churned",
        features: Sequence[str] | None = None,
        days_to_inactivity: str | None = None,
    ) -> TrainingSet:
        """Split one long frame (keys, ``as_of``, features, label) into a TrainingSet.

        Args:
            frame: Rows with ``workspace_id``, ``user_id``, ``as_of``, the features and the label.
            label: Name of the label column.
            features: Feature columns, in this order. By default every numeric column of ``frame``
                other than the keys, ``as_of``, ``label`` and ``days_to_inactivity``, in frame order.
            days_to_inactivity: Optional name of the time-to-inactivity column.
        """
        if features is None:
            not_features = {*KEYS, "as_of", label, days_to_inactivity}
            cols = [c for c in frame.columns
                    if c not in not_features and pd.api.types.is_numeric_dtype(frame[c])]
        else:
            cols = list(features)
        return cls(
            X=frame[cols],
            y=frame[label],
            as_of=frame["as_of"],
            keys=frame[list(KEYS)],
            days_to_inactivity=frame[days_to_inactivity] if days_to_inactivity else None,
        )

    @property
    def dates(self) -> list[pd.Timestamp]:
        """Distinct as-of dates, oldest first."""
        return sorted(self.as_of.unique())

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """Rows where the boolean ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return TrainingSet(
            X=self.X[mask],
            y=self.y[mask],
            as_of=self.as_of[mask],
            keys=self.keys[mask],
            days_to_inactivity=None if self.days_to_inactivity is None else self.days_to_inactivity[mask],
        )


def inactivity_targets(
    active_days: pd.DataFrame, snapshots: pd.DataFrame, observed_until: Any, window: int = 30
) -> pd.Series:
    """Targets for the time-to-churn model: in how many days does each snapshot's user lapse?

    A lapse is ``window`` days without activity. It starts the day after the user's last active
    day; for a user with no activity in ``(as_of, as_of + window]`` (label churned) it starts on
    day 1. Deciding whether a later last activity starts a lapse needs events up to that day plus
    ``window``.

    Args:
        active_days: One row per active day: ``workspace_id``, ``user_id``, ``day``.
        snapshots: ``workspace_id``, ``user_id``, ``as_of`` of the snapshot rows.
        observed_until: Last day with complete events.
        window: Lapse length and horizon, in days.

    Returns:
        Float series aligned with ``snapshots``: ``1..window`` = lapse starts that many days after
        ``as_of``; ``inf`` = no lapse starts within the window; NaN = not known yet.
    """
    keys = list(KEYS)
    w = np.timedelta64(window, "D")
    until = np.datetime64(pd.Timestamp(observed_until), "ns")
    snap = snapshots[keys].copy()
    snap["as_of"] = pd.to_datetime(snapshots["as_of"].to_numpy()).astype("datetime64[ns]")
    snap["_row"] = np.arange(len(snap))
    snap["_end"] = snap["as_of"] + w
    snap = snap.sort_values("_end")
    act = active_days[[*keys, "day"]].assign(day=lambda d: pd.to_datetime(d["day"]).astype("datetime64[ns]"))
    act = act.drop_duplicates()
    act = act.sort_values("day")
    last = pd.merge_asof(snap, act.rename(columns={"day": "_last"}), left_on="_end", right_on="_last", by=keys)
    nxt = pd.merge_asof(
        snap, act.rename(columns={"day": "_next"}), left_on="_end", right_on="_next", by=keys,
        direction="forward", allow_exact_matches=False,
    )
    last = last.sort_values("_row")
    t = last["as_of"].to_numpy()
    last_day = last["_last"].to_numpy()
    next_day = nxt.sort_values("_row")["_next"].to_numpy()

    quiet = pd.isna(last_day) | (last_day <= t)  # no activity in (T, T + window]
    start = (last_day - t) / np.timedelta64(1, "D") + 1
    known = ~pd.isna(next_day) | (last_day + w <= until)
    lapses = pd.isna(next_day) | (next_day - last_day > w)
    out = np.where(lapses, start, np.inf)
    out = np.where(known, out, np.nan)
    out = np.where(start > window, np.inf, out)  # active on the window's last day
    out = np.where(quiet, 1.0, out)
    out[t + w > until] = np.nan
    return pd.Series(out, index=snapshots.index, name="days_to_inactivity")
