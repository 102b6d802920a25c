"""Agents' daily calls and errors as dense ``agents × days`` arrays, and the workspace context beside them.

Every model step of the error-rate kind works on these arrays: rolling sums are cumulative-sum differences,
and a value at column ``t`` only ever uses columns ``<= t`` (point in time by construction), so the features
of every past day (training snapshots) and of the as-of day (scoring) come from one pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

KEYS = ["workspace_id", "agent_id"]


@dataclass
class AgentPanel:
    """Daily counts of ``A`` agents over ``D`` consecutive days ending at ``end``.

    Attributes:
        workspace_id, agent_id: ``(A,)`` source ids, sorted by (workspace, agent).
        feature: ``(A,)`` the agent's main feature/service (most calls in the last 90 days of the panel, else
            in the whole panel; ``"unknown"`` if none).
        start: The first day (column 0).
        calls, errors: ``(A, D)`` calls and failed calls per day (0 on days without calls).
        users, error_users: ``(A, D)`` distinct users of the agent's calls, and those with a failed call (0
            when the events carry no user ids, as agent calls often do).
        ws_active_users, ws_error_users: ``(A, D)`` the agent's workspace: active users, and users with at
            least one failed call, that day.
        first_day: ``(A,)`` column of the agent's first call; negative when it was before ``start``.
    """

    workspace_id: np.ndarray
    agent_id: np.ndarray
    feature: np.ndarray
    start: pd.Timestamp
    calls: np.ndarray
    errors: np.ndarray
    users: np.ndarray
    error_users: np.ndarray
    ws_active_users: np.ndarray
    ws_error_users: np.ndarray
    first_day: np.ndarray

    @property
    def n_agents(self) -> int:
        return len(self.agent_id)

    @property
    def n_days(self) -> int:
        return self.calls.shape[1]

    @property
    def days(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n_days, freq="D")

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.n_days - 1)

    def column(self, day) -> int:
        """Column of ``day`` (a date or timestamp); raises when it is outside the panel."""
        i = (pd.Timestamp(day) - self.start).days
        if not 0 <= i < self.n_days:
            raise ValueError(f"{pd.Timestamp(day).date()} is outside the panel {self.start.date()}..{self.end.date()}")
        return i

    def keys(self) -> pd.DataFrame:
        return pd.DataFrame({"workspace_id": self.workspace_id, "agent_id": self.agent_id, "feature": self.feature})

    def subset(self, rows: np.ndarray) -> AgentPanel:
        """The panel of some agents (a boolean mask or indices), e.g. one shard of workspaces."""
        return AgentPanel(**{k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()})


def build_panel(agent_days: pd.DataFrame, start, end, workspace_days: pd.DataFrame | None = None,
                first_seen: pd.DataFrame | None = None, feature_days: int = 90) -> AgentPanel:
    """Dense daily arrays of every agent in ``agent_days``, from ``start`` to ``end`` inclusive.

    Args:
        agent_days: One row per agent, day and feature (or per agent and day): ``workspace_id``, ``agent_id``,
            ``day``, ``calls``, ``errors`` and optionally ``feature``, ``users``, ``error_users``. Rows outside
            ``start..end`` are ignored; missing days are days without calls.
        start, end: The panel's first and last day.
        workspace_days: Optional ``workspace_id``, ``day``, ``active_users``, ``error_users``.
        first_seen: Optional ``workspace_id``, ``agent_id``, ``first_day`` (the agent's first call in all
            history, for its age); default: its first call in ``agent_days``.

    Returns:
        The panel; agents sorted by (workspace, agent).

    Raises:
        ValueError: ``end`` is before ``start`` or a required column is missing.
    """
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if end < start:
        raise ValueError(f"panel end {end.date()} is before its start {start.date()}")
    missing = [c for c in (*KEYS, "day", "calls", "errors") if c not in agent_days]
    if missing:
        raise ValueError(f"agent_days lacks columns {missing}")
    n_days = (end - start).days + 1
    seen = agent_days
    ad = agent_days[(agent_days["day"] >= start) & (agent_days["day"] <= end)]
    agents = ad[KEYS].drop_duplicates().sort_values(KEYS).reset_index(drop=True)
    n = len(agents)
    index = pd.MultiIndex.from_frame(agents)
    row = index.get_indexer(pd.MultiIndex.from_frame(ad[KEYS])) if n else np.zeros(0, dtype=int)
    col = (ad["day"] - start).dt.days.to_numpy() if n else np.zeros(0, dtype=int)

    def dense(values) -> np.ndarray:
        out = np.zeros((n, n_days))
        np.add.at(out, (row, col), np.asarray(values, dtype=float))
        return out

    zeros = np.zeros(len(ad))
    calls, errors = dense(ad["calls"]), dense(ad["errors"])
    users = dense(ad["users"] if "users" in ad else zeros)
    error_users = dense(ad["error_users"] if "error_users" in ad else zeros)
    if "feature" in ad and n:
        # main feature: most calls in the last ``feature_days`` of the panel (else in the whole panel), so that
        # panels of different lengths ending on the same day agree
        recent = ad[ad["day"] > end - pd.Timedelta(days=feature_days)]
        by_feature = pd.concat([recent.assign(calls=recent["calls"] * 1e6), ad]).groupby(
            [*KEYS, "feature"], observed=True)["calls"].sum().reset_index()
        top = by_feature.sort_values([*KEYS, "calls", "feature"], ascending=[True, True, False, True])
        top = top.drop_duplicates(KEYS).set_index(KEYS)["feature"]
        feature = top.reindex(index).fillna("unknown").to_numpy(dtype=object)
    else:
        feature = np.full(n, "unknown", dtype=object)

    ws_active, ws_err = np.zeros((n, n_days)), np.zeros((n, n_days))
    if workspace_days is not None and n and len(workspace_days):
        wd = workspace_days[(workspace_days["day"] >= start) & (workspace_days["day"] <= end)]
        ws_names = np.unique(agents["workspace_id"].to_numpy())
        w_row = pd.Index(ws_names).get_indexer(wd["workspace_id"])
        keep = w_row >= 0
        w_col = (wd["day"] - start).dt.days.to_numpy()[keep]
        act, err = np.zeros((len(ws_names), n_days)), np.zeros((len(ws_names), n_days))
        np.add.at(act, (w_row[keep], w_col), wd["active_users"].to_numpy(dtype=float)[keep])
        np.add.at(err, (w_row[keep], w_col), wd["error_users"].to_numpy(dtype=float)[keep])
        a_ws = pd.Index(ws_names).get_indexer(agents["workspace_id"])
        ws_active, ws_err = act[a_ws], err[a_ws]

    if first_seen is not None and n:
        fs = first_seen.set_index(KEYS)["first_day"].reindex(index)
        first = fs.fillna(start).to_numpy()
    elif n:
        fs = seen[seen["calls"] > 0].groupby(KEYS, observed=True)["day"].min().reindex(index)
        first = fs.fillna(start).to_numpy()
    else:
        first = np.array([], dtype="datetime64[ns]")
    first_day = ((pd.to_datetime(first) - start).days.to_numpy() if n else np.zeros(0)).astype(int)
    return AgentPanel(workspace_id=agents["workspace_id"].to_numpy(dtype=object),
                      agent_id=agents["agent_id"].to_numpy(dtype=object), feature=feature, start=start,
                      calls=calls, errors=errors, users=users, error_users=error_users,
                      ws_active_users=ws_active, ws_error_users=ws_err, first_day=first_day)


def rolling_sum(x: np.ndarray, window: int, lag: int = 0) -> np.ndarray:
    """Sum of ``x`` over the ``window`` columns ending ``lag`` columns before each column (partial at the start)."""
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    idx = np.arange(x.shape[1]) - lag
    hi = np.clip(idx + 1, 0, x.shape[1])
    lo = np.clip(idx + 1 - window, 0, x.shape[1])
    return c[:, hi] - c[:, lo]


def shift(x: np.ndarray, k: int, fill: float = 0.0) -> np.ndarray:
    """``x`` moved ``k`` columns to the right (the value of ``k`` days earlier), ``fill`` before the start."""
    if k == 0:
        return x.copy()
    out = np.full_like(x, fill, dtype=float)
    out[:, k:] = x[:, :-k]
    return out


def logit(p) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def expit(x) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))
