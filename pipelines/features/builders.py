"""Feature computation, pure functions over frames (no I/O; see ``pipelines.features.store``).

Two layers:
1. ``daily_aggregates(events)``: the events of any set of days → daily tables at fixed grains
   (workspace × day × feature, user × day × feature, agent × day). These are additive per day, so they
   are computed once per staged partition and stored.
2. ``build_*_features(daily, as_of)``: the declared feature sets (``pipelines.features.sets``) as of ``T``,
   from daily rows with ``day <= T`` only. Point in time by construction: every builder starts by
   dropping rows after ``T``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date

import holidays as holidays_lib
import numpy as np
import pandas as pd

from pipelines.features.sets import (
    AGENT_DAILY,
    GROWTH_MAU_WINDOW_DAYS,
    USER_BEHAVIOUR,
    WEEKLY_SEQUENCE_WEEKS,
    WORKSPACE_DAILY,
    WORKSPACE_GROWTH,
)


@dataclass
class DailyAggregates:
    workspace_feature: pd.DataFrame  # workspace_id, day, feature, credits, calls, errors, active_users
    workspace_total: pd.DataFrame  # workspace_id, day, credits, calls, errors, active_users
    user_feature: pd.DataFrame  # workspace_id, user_id, day, feature, credits, calls, errors
    agent: pd.DataFrame  # workspace_id, agent_id, day, calls, errors, credits
    # workspace_id, agent_id, day, feature, calls, errors, credits, users, error_users (distinct non-null users)
    agent_feature: pd.DataFrame = field(default_factory=lambda: _empty_daily("agent_feature"))
    # workspace_id, day, active_users, error_users (users with at least one failed call that day)
    workspace_errors: pd.DataFrame = field(default_factory=lambda: _empty_daily("workspace_errors"))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "workspace_feature": self.workspace_feature,
            "workspace_total": self.workspace_total,
            "user_feature": self.user_feature,
            "agent": self.agent,
            "agent_feature": self.agent_feature,
            "workspace_errors": self.workspace_errors,
        }


_EXTRA_DAILY_COLUMNS = {
    "agent_feature": ["workspace_id", "agent_id", "day", "feature", "calls", "errors", "credits", "users",
                      "error_users"],
    "workspace_errors": ["workspace_id", "day", "active_users", "error_users"],
}


def _empty_daily(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "day" else "object" if c.endswith(("_id", "feature"))
                                      else "int64") for c in _EXTRA_DAILY_COLUMNS[name]})


def daily_aggregates(events: pd.DataFrame) -> DailyAggregates:
    """Aggregate contract events (event_time UTC, ..., count) to the daily tables."""
    ev = events.assign(
        day=events["event_time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize(),
        calls=events["count"].astype("int64"),
        errors=np.where(events["status"].to_numpy() == "error", events["count"].to_numpy(), 0),
    )
    users = ev[ev["user_id"].notna()]
    wf = ev.groupby(["workspace_id", "day", "feature"], sort=True, observed=True).agg(
        credits=("credits", "sum"), calls=("calls", "sum"), errors=("errors", "sum")
    )
    wf["active_users"] = users.groupby(["workspace_id", "day", "feature"], observed=True)["user_id"].nunique()
    wt = ev.groupby(["workspace_id", "day"], sort=True, observed=True).agg(
        credits=("credits", "sum"), calls=("calls", "sum"), errors=("errors", "sum")
    )
    wt["active_users"] = users.groupby(["workspace_id", "day"], observed=True)["user_id"].nunique()
    uf = users.groupby(["workspace_id", "user_id", "day", "feature"], sort=True, observed=True).agg(
        credits=("credits", "sum"), calls=("calls", "sum"), errors=("errors", "sum")
    )
    ag = ev[ev["agent_id"].notna()].groupby(["workspace_id", "agent_id", "day"], sort=True, observed=True).agg(
        calls=("calls", "sum"), errors=("errors", "sum"), credits=("credits", "sum")
    )
    agent_rows = ev[ev["agent_id"].notna()]
    af = agent_rows.groupby(["workspace_id", "agent_id", "day", "feature"], sort=True, observed=True).agg(
        calls=("calls", "sum"), errors=("errors", "sum"), credits=("credits", "sum"),
        users=("user_id", "nunique"))
    af["error_users"] = agent_rows[agent_rows["errors"] > 0].groupby(
        ["workspace_id", "agent_id", "day", "feature"], observed=True)["user_id"].nunique()
    we = users.groupby(["workspace_id", "day"], sort=True, observed=True).agg(active_users=("user_id", "nunique"))
    we["error_users"] = users[users["errors"] > 0].groupby(["workspace_id", "day"], observed=True)["user_id"].nunique()
    fill = {"active_users": 0}
    return DailyAggregates(
        workspace_feature=wf.fillna(fill).astype({"active_users": "int64"}).reset_index(),
        workspace_total=wt.fillna(fill).astype({"active_users": "int64"}).reset_index(),
        user_feature=uf.reset_index(),
        agent=ag.reset_index(),
        agent_feature=af.fillna({"error_users": 0}).astype({"users": "int64", "error_users": "int64"}).reset_index(),
        workspace_errors=we.fillna({"error_users": 0}).astype({"active_users": "int64",
                                                               "error_users": "int64"}).reset_index(),
    )


def _until(df: pd.DataFrame, as_of: date) -> pd.DataFrame:
    return df[df["day"] <= pd.Timestamp(as_of)]


def complete_daily(df: pd.DataFrame, id_col: str, value_cols: list[str], as_of: date, start: str = "first") -> pd.DataFrame:
    """Zero-fill each entity's daily rows from its first day (or a fixed start) to ``as_of``."""
    df = _until(df, as_of)
    if df.empty:
        return df[[id_col, "day", *value_cols]].copy()
    end = pd.Timestamp(as_of)
    first = df.groupby(id_col, observed=True)["day"].min()
    lengths = ((end - first).dt.days + 1).to_numpy()
    ids = np.repeat(first.index.to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    days = np.repeat(first.to_numpy(), lengths) + offsets.astype("timedelta64[D]")
    grid = pd.DataFrame({id_col: ids, "day": days})
    out = grid.merge(df[[id_col, "day", *value_cols]], on=[id_col, "day"], how="left")
    out[value_cols] = out[value_cols].fillna(0)
    return out


def daily_series(agg: DailyAggregates, as_of: date, by_feature: bool = False) -> pd.DataFrame:
    """Long-format credit series ``(unique_id, ds, y)``: per workspace, or per workspace × feature.

    ``unique_id`` is ``workspace_id`` or ``workspace_id|feature``; missing days are zero usage.
    """
    if by_feature:
        src = agg.workspace_feature.assign(unique_id=lambda d: d["workspace_id"] + "|" + d["feature"])
    else:
        src = agg.workspace_total.assign(unique_id=lambda d: d["workspace_id"])
    full = complete_daily(src, "unique_id", ["credits"], as_of)
    return full.rename(columns={"day": "ds", "credits": "y"})[["unique_id", "ds", "y"]]


def _stl_stats(y: np.ndarray) -> tuple[float, float, float, float]:
    """(trend at end, trend slope per day over 28 days, seasonal strength, trend strength) of a daily series."""
    from statsmodels.tsa.seasonal import STL

    if len(y) < 28 or np.allclose(y, y[0]):
        return (float(y[-1]) if len(y) else 0.0, 0.0, 0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = STL(y, period=7).fit()
    r, s, t = res.resid, res.seasonal, res.trend
    seasonal_strength = max(0.0, 1.0 - np.var(r) / max(np.var(s + r), 1e-12))
    trend_strength = max(0.0, 1.0 - np.var(r) / max(np.var(t + r), 1e-12))
    slope = (t[-1] - t[-29]) / 28.0 if len(t) > 28 else 0.0
    return float(t[-1]), float(slope), float(seasonal_strength), float(trend_strength)


def _is_holiday(day: date, country: str) -> bool:
    return day in holidays_lib.country_holidays(country, years=day.year)


def build_workspace_features(agg: DailyAggregates, as_of: date, holiday_country: str = "US", stl_days: int = 182) -> pd.DataFrame:
    """``workspace_daily`` features, one row per workspace seen up to ``as_of``."""
    T = pd.Timestamp(as_of)
    wt = complete_daily(agg.workspace_total, "workspace_id", ["credits", "calls", "errors", "active_users"], as_of)
    if wt.empty:
        return pd.DataFrame(columns=["workspace_id", *WORKSPACE_DAILY.columns])
    wt = wt.sort_values(["workspace_id", "day"])
    wt["days_ago"] = (T - wt["day"]).dt.days
    g = wt.groupby("workspace_id", sort=True)

    def window(col: str, w: int, lo: int = 0) -> pd.core.groupby.SeriesGroupBy:
        sub = wt[(wt["days_ago"] >= lo) & (wt["days_ago"] < lo + w)]
        return sub.groupby("workspace_id")[col]

    out = pd.DataFrame(index=g.size().index)
    at = wt[wt["days_ago"] == 0].set_index("workspace_id")
    out["credits_t"] = at["credits"]
    for lag in (1, 7, 30):
        out[f"credits_lag_{lag}"] = wt[wt["days_ago"] == lag].set_index("workspace_id")["credits"]
    for w in (7, 28):
        agg_w = window("credits", w).agg(["mean", "std", "min", "max"])
        for stat in ("mean", "std", "min", "max"):
            out[f"credits_roll_{w}_{stat}"] = agg_w[stat]
    out["calls_roll_7_mean"] = window("calls", 7).mean()
    out["errors_roll_7_mean"] = window("errors", 7).mean()
    out["error_rate_28"] = window("errors", 28).sum() / window("calls", 28).sum().replace(0, np.nan)
    out["active_users_t"] = at["active_users"]

    uf = _until(agg.user_feature, as_of)
    ud_ago = (T - uf["day"]).dt.days
    out["active_users_7"] = uf[ud_ago < 7].groupby("workspace_id")["user_id"].nunique()
    out["active_users_28"] = uf[ud_ago < 28].groupby("workspace_id")["user_id"].nunique()
    out["users_ever"] = uf.groupby("workspace_id")["user_id"].nunique()
    wf = _until(agg.workspace_feature, as_of)
    out["n_features_28"] = wf[(T - wf["day"]).dt.days < 28].groupby("workspace_id")["feature"].nunique()
    out["history_days"] = g["days_ago"].max() + 1
    out["zero_share_28"] = window("credits", 28).apply(lambda s: float((s == 0).mean()))

    stl = {
        ws: _stl_stats(grp["credits"].to_numpy()[-stl_days:])
        for ws, grp in wt[wt["days_ago"] < stl_days].groupby("workspace_id", sort=True)
    }
    stl_df = pd.DataFrame.from_dict(
        stl, orient="index", columns=["stl_trend_t", "stl_trend_slope_28", "seasonal_strength_7", "trend_strength"]
    )
    out = out.join(stl_df)
    out["dow_t"] = as_of.weekday()
    out["is_weekend_t"] = as_of.weekday() >= 5
    out["is_holiday_t"] = _is_holiday(as_of, holiday_country)
    out["credits_wow_ratio"] = (window("credits", 7).sum() + 1) / (window("credits", 7, lo=7).sum() + 1)
    out["credits_per_active_user_28"] = window("credits", 28).sum() / out["active_users_28"].replace(0, np.nan)
    return _finish(out, WORKSPACE_DAILY.dtypes, "workspace_id")


def _finish(out: pd.DataFrame, dtypes: dict[str, str], index_name: str | list[str]) -> pd.DataFrame:
    """Order columns as declared, fill gaps with 0 and cast to the declared types."""
    out = out.reindex(columns=list(dtypes))
    for col, kind in dtypes.items():
        if kind == "float":
            out[col] = out[col].astype("float64").replace([np.inf, -np.inf], np.nan).fillna(0.0)
        elif kind == "int":
            out[col] = out[col].fillna(0).astype("int64")
        else:
            out[col] = out[col].fillna(False).astype(bool)
    out.index.names = index_name if isinstance(index_name, list) else [index_name]
    return out.reset_index()


USER_LOOKBACK_DAYS = 365  # users seen within this many days are featurised (and scored); rhythm window


def _user_rhythm(ud: pd.DataFrame, keys: list[str], window: int) -> tuple[pd.DataFrame, pd.Series]:
    """Gaps between a user's active days in the ``window`` days to T, and each workspace's usual gap.

    Returns per user ``n_active``, ``n_gaps``, ``gap_sum`` (first to last active day), ``gap_std`` and
    ``gap_max`` (0 without two gaps / one gap) and ``first_ago``; and per workspace the median of its users'
    own mean gaps (users with at least one gap).
    """
    days = ud[ud["days_ago"] < window][[*keys, "days_ago"]].sort_values([*keys, "days_ago"], ascending=False)
    gap = -days.groupby(keys, sort=False)["days_ago"].diff()
    g = days.assign(gap=gap).groupby(keys, sort=True)
    out = pd.DataFrame({"n_active": g.size(), "first_ago": g["days_ago"].max(), "last_ago": g["days_ago"].min(),
                        "gap_std": g["gap"].std(ddof=0), "gap_max": g["gap"].max()})
    out["n_gaps"] = out["n_active"] - 1
    out["gap_sum"] = (out["first_ago"] - out["last_ago"]).astype(float)
    own_mean = (out["gap_sum"] / out["n_gaps"]).where(out["n_gaps"] > 0)
    ws_gap = own_mean.groupby(level="workspace_id").median()
    return out.fillna({"gap_std": 0.0, "gap_max": 0.0}), ws_gap


# MBG/NBD inputs per user (repeat active days, last-minus-first, observed days; NaN when not seen in the window):
# a workspace shard keeps them so P(alive) can be refitted on every shard's users together.
P_ALIVE_INPUTS = ("p_alive_x", "p_alive_t_x", "p_alive_T")


def build_user_features(agg: DailyAggregates, as_of: date,
                        active_within_days: int | None = USER_LOOKBACK_DAYS,
                        with_p_alive_inputs: bool = False) -> pd.DataFrame:
    """``user_behaviour`` features, one row per (workspace, user) active in ``active_within_days`` to ``as_of``.

    Rhythm columns (gaps between active days, usual gap, silence ratio, P(alive)) use the
    :data:`USER_LOOKBACK_DAYS` days to ``as_of``; see :mod:`models.churn.rhythm` for their definitions.
    P(alive) is pooled over the users given; ``with_p_alive_inputs`` adds the :data:`P_ALIVE_INPUTS` columns, for
    :func:`refit_p_alive` over a larger pool.
    """
    from models.churn.rhythm import DEFAULT_GAP_DAYS, MBGNBD, usual_gap

    T = pd.Timestamp(as_of)
    uf = _until(agg.user_feature, as_of)
    keys = ["workspace_id", "user_id"]
    if uf.empty:
        return pd.DataFrame(columns=[*keys, *USER_BEHAVIOUR.columns, *(P_ALIVE_INPUTS if with_p_alive_inputs else ())])
    uf = uf.assign(days_ago=(T - uf["day"]).dt.days.astype("int64"))
    span = uf.groupby(keys, sort=True)["days_ago"].agg(["max", "min"])
    if active_within_days is not None:
        span = span[span["min"] < active_within_days]
        uf = uf.merge(span[[]].reset_index(), on=keys)
    ud = uf.groupby([*keys, "day", "days_ago"], sort=False, observed=True)[["credits", "calls", "errors"]].sum().reset_index()

    out = pd.DataFrame(index=span.index)
    out["tenure_days"] = span["max"] + 1
    out["recency_days"] = span["min"]

    def in_window(df: pd.DataFrame, w: int, lo: int = 0) -> pd.DataFrame:
        return df[(df["days_ago"] >= lo) & (df["days_ago"] < lo + w)]

    def active_days(w: int, lo: int = 0) -> pd.Series:
        return in_window(ud, w, lo).groupby(keys).size()

    out["active_days_7"] = active_days(7)
    out["active_days_28"] = active_days(28)
    out["active_days_prev_28"] = active_days(28, lo=28)
    out["active_days_90"] = active_days(90)
    out["frequency_90"] = out["active_days_90"].fillna(0) / np.minimum(out["tenure_days"], 90)
    for w in (7, 28):
        out[f"calls_{w}"] = in_window(ud, w).groupby(keys)["calls"].sum()
    out["credits_28"] = in_window(ud, 28).groupby(keys)["credits"].sum()
    out["credits_90"] = in_window(ud, 90).groupby(keys)["credits"].sum()

    weeks = in_window(ud, 7 * WEEKLY_SEQUENCE_WEEKS).assign(week=lambda d: d["days_ago"] // 7)
    seq = weeks.groupby([*keys, "week"]).size().unstack("week").reindex(columns=range(WEEKLY_SEQUENCE_WEEKS)).fillna(0)
    seq = seq.reindex(out.index).fillna(0)
    for i in range(WEEKLY_SEQUENCE_WEEKS):
        out[f"weekly_active_w{i}"] = seq[i]
    x = -np.arange(WEEKLY_SEQUENCE_WEEKS, dtype=float)  # w0 is the latest week
    xc = x - x.mean()
    out["activity_slope_8w"] = (seq.to_numpy() - seq.to_numpy().mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    out["wow_ratio"] = (seq[0] + 1) / (seq[1] + 1)
    out["features_used_28"] = in_window(uf, 28).groupby(keys)["feature"].nunique()
    out["features_used_90"] = in_window(uf, 90).groupby(keys)["feature"].nunique()
    out["errors_28"] = in_window(ud, 28).groupby(keys)["errors"].sum()
    out["error_rate_28"] = out["errors_28"] / out["calls_28"].replace(0, np.nan)

    ws_uf = uf if active_within_days is None else _until(agg.user_feature, as_of).assign(
        days_ago=lambda d: (T - d["day"]).dt.days
    )
    ws = pd.DataFrame(
        {
            "ws_active_users_28": ws_uf[ws_uf["days_ago"] < 28].groupby("workspace_id")["user_id"].nunique(),
            "ws_users_ever": ws_uf.groupby("workspace_id")["user_id"].nunique(),
        }
    )
    wt = _until(agg.workspace_total, as_of).assign(days_ago=lambda d: (T - d["day"]).dt.days)
    ws_c28 = wt[wt["days_ago"] < 28].groupby("workspace_id")["credits"].sum()
    ws_prev = wt[(wt["days_ago"] >= 28) & (wt["days_ago"] < 56)].groupby("workspace_id")["credits"].sum()
    ws["ws_credits_trend"] = (ws_c28.reindex(ws.index).fillna(0) + 1) / (ws_prev.reindex(ws.index).fillna(0) + 1)
    ws["ws_credits_28"] = ws_c28
    out = out.join(ws, on="workspace_id")
    out["credits_per_active_day_28"] = out["credits_28"] / out["active_days_28"].replace(0, np.nan)
    out["share_of_ws_credits_28"] = out["credits_28"] / out["ws_credits_28"].replace(0, np.nan)
    out["engagement_drop_28"] = out["active_days_prev_28"].fillna(0) - out["active_days_28"].fillna(0)

    all_ud = ws_uf.assign(days_ago=ws_uf["days_ago"].astype("int64"))[[*keys, "days_ago"]].drop_duplicates()
    rhythm, ws_gap = _user_rhythm(all_ud, keys, USER_LOOKBACK_DAYS)
    r = rhythm.reindex(out.index)  # users silent for the whole window: no rhythm rows (NaN)
    ws_usual = ws_gap.reindex(out.index.get_level_values("workspace_id")).to_numpy()
    n_gaps, gap_sum = r["n_gaps"].fillna(0).to_numpy(), r["gap_sum"].fillna(0).to_numpy()
    out["active_days_365"] = r["n_active"].fillna(0)
    out["ws_usual_gap_days"] = np.where(np.isfinite(ws_usual), ws_usual, DEFAULT_GAP_DAYS)
    out["usual_gap_days"] = usual_gap(gap_sum, n_gaps, out["ws_usual_gap_days"].to_numpy())
    out["gap_mean_days"] = np.where(n_gaps > 0, gap_sum / np.maximum(n_gaps, 1), out["usual_gap_days"])
    out["gap_cv"] = (r["gap_std"] / out["gap_mean_days"]).where(n_gaps > 1, 0.0)
    out["longest_gap_days"] = r["gap_max"].fillna(0)
    out["silence_ratio"] = out["recency_days"] / out["usual_gap_days"]
    seen = r["n_active"].notna().to_numpy()
    x, T = n_gaps[seen], r["first_ago"].to_numpy()[seen].astype(float)
    t_x = T - out["recency_days"].to_numpy()[seen].astype(float)
    p_alive = np.zeros(len(out))
    if seen.any():
        p_alive[seen] = MBGNBD.fit(x, t_x, T).p_alive(x, t_x, T)
    out["p_alive"] = p_alive
    finished = _finish(out, USER_BEHAVIOUR.dtypes, keys)
    if with_p_alive_inputs:
        for col, values in zip(P_ALIVE_INPUTS, (x, t_x, T)):
            full = np.full(len(out), np.nan)
            full[seen] = values
            finished[col] = full
    return finished


def fit_p_alive(inputs: pd.DataFrame):
    """The MBG/NBD model pooled over users' :data:`P_ALIVE_INPUTS` (rows sorted by workspace and user, the order
    :func:`build_user_features` fits in); ``None`` when no user was seen in the window."""
    from models.churn.rhythm import MBGNBD

    seen = inputs[inputs[P_ALIVE_INPUTS[0]].notna()].sort_values(["workspace_id", "user_id"])
    if seen.empty:
        return None
    return MBGNBD.fit(*(seen[c].to_numpy() for c in P_ALIVE_INPUTS))


def refit_p_alive(frame: pd.DataFrame, model) -> pd.DataFrame:
    """``frame`` (``user_behaviour`` with :data:`P_ALIVE_INPUTS`) with ``p_alive`` from ``model`` and the inputs
    dropped; users not seen in the window keep 0."""
    seen = frame[P_ALIVE_INPUTS[0]].notna().to_numpy()
    p_alive = np.zeros(len(frame))
    if seen.any() and model is not None:
        p_alive[seen] = model.p_alive(*(frame.loc[seen, c].to_numpy() for c in P_ALIVE_INPUTS))
    return frame.drop(columns=list(P_ALIVE_INPUTS)).assign(p_alive=p_alive)


AGENT_LOOKBACK_DAYS = 90  # agents with calls within this many days of T are featurised (and scored)
AGENT_PANEL_DAYS = 180  # history read for them: the lookback, the baseline's 62 days and a margin


def agent_first_seen(agent_feature: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Each agent's first day with calls up to ``as_of``: ``workspace_id``, ``agent_id``, ``first_day``."""
    ad = _until(agent_feature, as_of)
    return (ad[ad["calls"] > 0].groupby(["workspace_id", "agent_id"], observed=True)["day"].min()
            .rename("first_day").reset_index())


def build_agent_features(agg: DailyAggregates, as_of: date, first_seen: pd.DataFrame | None = None) -> pd.DataFrame:
    """``agent_daily`` features, one row per agent with calls in the :data:`AGENT_LOOKBACK_DAYS` days to ``as_of``.

    Computed by :mod:`models.error_rates` from the ``agent_feature`` and ``workspace_errors`` daily tables (the
    error-rate kind computes its training snapshots with the same functions). ``agg`` needs the
    :data:`AGENT_PANEL_DAYS` to ``as_of`` only when ``first_seen`` (:func:`agent_first_seen` of all history, for the
    agents' age) is given; without it, it is computed from ``agg``.
    """
    from models.error_rates import baselines, build_panel, daily_features, frame_at

    T = pd.Timestamp(as_of)
    keys = ["workspace_id", "agent_id"]
    ad = _until(agg.agent_feature, as_of)
    live = ad[(ad["calls"] > 0) & ((T - ad["day"]).dt.days < AGENT_LOOKBACK_DAYS)][keys].drop_duplicates()
    if live.empty:
        return pd.DataFrame(columns=[*keys, *AGENT_DAILY.columns])
    first = agent_first_seen(agg.agent_feature, as_of) if first_seen is None else first_seen
    panel = build_panel(ad.merge(live, on=keys), T - pd.Timedelta(days=AGENT_PANEL_DAYS - 1), T,
                        _until(agg.workspace_errors, as_of), first_seen=first)
    feats = daily_features(panel, baselines(panel))
    out = frame_at(panel, feats, panel.n_days - 1).drop(columns=["feature", "day"]).set_index(keys)
    return _finish(out, AGENT_DAILY.dtypes, keys)


def _per_day(ws_code: np.ndarray, day: np.ndarray, n_ws: int, n_days: int) -> np.ndarray:
    """Entries per (workspace, day) as an (n_ws, n_days) matrix; days >= n_days are dropped."""
    keep = day < n_days
    flat = np.bincount(ws_code[keep] * n_days + day[keep], minlength=n_ws * n_days)
    return flat.astype(np.int64).reshape(n_ws, n_days)


def _window_counts(ws_code: np.ndarray, day: np.ndarray, nxt: np.ndarray, window: int, n_ws: int,
                   n_days: int) -> np.ndarray:
    """Distinct users active in the ``window`` days ending each day, per workspace: (n_ws, n_days).

    Each active day ``a`` of a user covers the days ``a .. a + window - 1``; cut at the user's next active
    day, these intervals are disjoint and their union is exactly the days the user counts, so +1 at ``a``
    and -1 at ``min(a + window, next)`` summed cumulatively gives the exact distinct count.
    """
    diff = _per_day(ws_code, day, n_ws, n_days) - _per_day(ws_code, np.minimum(day + window, nxt), n_ws, n_days)
    return np.cumsum(diff, axis=1)


GROWTH_CHUNK_WORKSPACES = 2000  # workspaces computed together; bounds the (workspaces x days) matrices


def build_growth_features(agg: DailyAggregates, as_of: date,
                          mau_window_days: int = GROWTH_MAU_WINDOW_DAYS) -> pd.DataFrame:
    """``workspace_growth`` features: one row per workspace and day ``d`` from its first event to ``as_of``.

    Every count on ``d`` uses user activity up to the end of ``d`` only (events without a user id do not
    count; a workspace with agent traffic only has rows of zeros). See ``WORKSPACE_GROWTH`` for the
    definitions; on every row ``dau = new_users + returning_users + reactivated_users`` and
    ``mau(d) - mau(d - 1) = new_users + reactivated_users - lost_users``.
    """
    keys = ["workspace_id", "day"]
    wt = _until(agg.workspace_total, as_of)
    if wt.empty:
        return pd.DataFrame({"workspace_id": pd.Series(dtype=object), "day": pd.Series(dtype="datetime64[ns]"),
                             **{c: pd.Series(dtype="int64") for c in WORKSPACE_GROWTH.columns}})
    first = wt.groupby("workspace_id", sort=True)["day"].min()
    uf = _until(agg.user_feature, as_of)
    ws_all = pd.Index(first.index).get_indexer(uf["workspace_id"]).astype(np.int64)
    user_all = pd.factorize(uf["user_id"])[0].astype(np.int64)
    parts = []
    for lo in range(0, len(first), GROWTH_CHUNK_WORKSPACES):
        chunk = first.iloc[lo:lo + GROWTH_CHUNK_WORKSPACES]
        rows = (ws_all >= lo) & (ws_all < lo + len(chunk))
        parts.append(_growth_chunk(chunk, ws_all[rows] - lo, user_all[rows], uf["day"].to_numpy()[rows], as_of,
                                   int(mau_window_days)))
    return pd.concat(parts, ignore_index=True)[[*keys, *WORKSPACE_GROWTH.columns]]


def _growth_chunk(first: pd.Series, ws_code: np.ndarray, user_code: np.ndarray, days: np.ndarray, as_of: date,
                  W: int) -> pd.DataFrame:
    """The growth rows of the workspaces ``first`` (first event day per workspace) from their user-feature
    rows (workspace position in ``first``, user code, day)."""
    start = first.min()
    n_days = int((pd.Timestamp(as_of) - start).days) + 1
    n_ws = len(first)
    day = ((days - start.to_datetime64()) // np.timedelta64(1, "D")).astype(np.int64)
    n_users = int(user_code.max()) + 1 if len(user_code) else 1
    # one entry per (workspace, user, active day), sorted by user then day
    key = np.sort((ws_code * n_users + user_code) * n_days + day)
    keep = np.ones(key.size, bool)
    keep[1:] = key[1:] != key[:-1]
    key = key[keep]
    user_key, day = key // n_days, key % n_days
    ws_code = user_key // n_users
    same = user_key[1:] == user_key[:-1]  # the next entry is the same user's
    first_seen = np.ones(key.size, bool)
    first_seen[1:] = ~same
    prev = np.full(key.size, -1, np.int64)  # previous active day of the user, -1 for none
    prev[1:] = np.where(same, day[:-1], -1)
    nxt = np.full(key.size, n_days + W + 7, np.int64)  # next active day, or beyond the end
    nxt[:-1] = np.where(same, day[1:], n_days + W + 7)
    gap = day - prev

    def count(mask: np.ndarray, when: np.ndarray = day) -> np.ndarray:
        return _per_day(ws_code[mask], when[mask], n_ws, n_days)

    new = count(first_seen)
    counts = {
        "dau": count(np.ones(len(day), bool)),
        "wau": _window_counts(ws_code, day, nxt, 7, n_ws, n_days),
        "mau": _window_counts(ws_code, day, nxt, W, n_ws, n_days),
        "new_users": new,
        "returning_users": count(~first_seen & (gap <= W)),
        "reactivated_users": count(~first_seen & (gap > W)),
        "lost_users": count(nxt - day > W, day + W),  # silent for a whole window after this active day
        "users_ever": np.cumsum(new, axis=1),
    }
    offset = (first - start).dt.days.to_numpy(np.int64)
    rows = np.repeat(np.arange(n_ws), n_days - offset)
    cols = np.concatenate([np.arange(o, n_days) for o in offset])
    out = pd.DataFrame({"workspace_id": first.index.to_numpy()[rows],
                        "day": (start + pd.to_timedelta(cols, unit="D")).astype("datetime64[ns]")})
    for name, matrix in counts.items():
        out[name] = matrix[rows, cols].astype(np.int64)
    return out
