"""Sign-up bursts: a day with far more new users than usual (an import, a campaign, a bot wave), whose users were
active on that one day and never again.

Left in the series, such a cohort lifts WAU for 7 days and MAU for a whole window, and every model reads the
plateau as the new level: a workspace with 30 regular users and 400 one-day sign-ups would be projected at 430
MAU for months. So the series the models see are cleaned of the cohort (its users counted exactly where they
count: DAU on the day, WAU for 7 days, MAU for the MAU window), and its exact remaining contribution is added
back to the paths until it ages out of the windows. Users of the burst who came back on another day are
ordinary users and stay in the series. A burst's one-day users who return after the run are counted as they
return, by the next run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BURST_MIN_USERS = 20  # a burst has at least this many new users on the day ...
BURST_FACTOR = 5.0  # ... and this many times the mean daily new users (+1) of the 28 days before it
LOOKBACK_DAYS = 182  # bursts are looked for in this many days before the as-of date


def one_day_cohorts(growth: pd.DataFrame, user_days: pd.DataFrame, as_of, window: int) -> pd.DataFrame:
    """Bursts in the ``LOOKBACK_DAYS`` to ``as_of`` and their users seen on that day only (in the loaded span).

    Args:
        growth: ``workspace_growth`` rows up to ``as_of``.
        user_days: ``user_feature`` daily rows of at least ``LOOKBACK_DAYS + window`` days to ``as_of``.

    Returns:
        ``(workspace_id, day, users)``: one row per burst with at least one one-day user.
    """
    T = pd.Timestamp(as_of)
    g = growth[(growth["day"] <= T) & (growth["day"] > T - pd.Timedelta(days=LOOKBACK_DAYS + 28))].sort_values(
        ["workspace_id", "day"])
    before = g.groupby("workspace_id")["new_users"].transform(lambda s: s.shift(1).rolling(28, min_periods=7).mean())
    burst = g[(g["day"] > T - pd.Timedelta(days=LOOKBACK_DAYS)) & (g["new_users"] >= BURST_MIN_USERS)
              & (g["new_users"] >= BURST_FACTOR * (before.fillna(0) + 1))][["workspace_id", "day"]]
    if burst.empty:
        return pd.DataFrame(columns=["workspace_id", "day", "users"])
    ud = user_days[user_days["workspace_id"].isin(set(burst["workspace_id"])) & (user_days["day"] <= T)]
    ud = ud[["workspace_id", "user_id", "day"]].drop_duplicates()
    days = ud.groupby(["workspace_id", "user_id"])["day"].agg(["min", "count"])
    once = days[days["count"] == 1].reset_index().rename(columns={"min": "day"})
    counts = once.groupby(["workspace_id", "day"]).size().rename("users").reset_index()
    out = burst.merge(counts, on=["workspace_id", "day"])
    return out[out["users"] > 0].reset_index(drop=True)


def contributions(cohorts: pd.DataFrame, days: pd.Series, workspaces: pd.Series, window: int) -> np.ndarray:
    """The cohorts' exact counts in DAU, WAU and MAU on the given (workspace, day) rows: (n_rows, 3)."""
    out = np.zeros((len(days), 3))
    for c in cohorts.itertuples():
        rows = (workspaces.to_numpy() == c.workspace_id)
        age = (days.to_numpy() - np.datetime64(c.day)) // np.timedelta64(1, "D")
        for j, width in enumerate((1, 7, window)):
            out[rows & (age >= 0) & (age < width), j] += c.users
    return out


def clean(growth: pd.DataFrame, cohorts: pd.DataFrame, window: int) -> pd.DataFrame:
    """``growth`` with the cohorts' users taken out of DAU, WAU and MAU."""
    if cohorts.empty:
        return growth
    sub = growth["workspace_id"].isin(set(cohorts["workspace_id"]))
    part = growth[sub].copy()
    c = contributions(cohorts, part["day"], part["workspace_id"], window)
    for j, m in enumerate(("dau", "wau", "mau")):
        part[m] = np.maximum(part[m] - c[:, j], 0).astype(part[m].dtype)
    return pd.concat([growth[~sub], part]).sort_index()


def future(cohorts: pd.DataFrame, workspace: str, as_of, h: int, window: int) -> np.ndarray:
    """The cohorts' remaining counts (3, h) on the ``h`` days after ``as_of``."""
    days = pd.Series(pd.date_range(pd.Timestamp(as_of) + pd.Timedelta(days=1), periods=h))
    return contributions(cohorts, days, pd.Series([workspace] * h), window).T
