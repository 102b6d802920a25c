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
from dataclasses import dataclass
from datetime import date

import holidays as holidays_lib
import numpy as np
import pandas as pd

from pipelines.features.sets import (
    AGENT_DAILY,
    USER_BEHAVIOUR,
    WEEKLY_SEQUENCE_WEEKS,
    WORKSPACE_DAILY,
)


@dataclass
class DailyAggregates:
    workspace_feature: pd.DataFrame  # workspace_id, day, feature, credits, calls, errors, active_users
    workspace_total: pd.DataFrame  # workspace_id, day, credits, calls, errors, active_users
    user_feature: pd.DataFrame  # workspace_id, user_id, day, feature, credits, calls, errors
    agent: pd.DataFrame  # workspace_id, agent_id, day, calls, errors, credits

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "workspace_feature": self.workspace_feature,
            "workspace_total": self.workspace_total,
            "user_feature": self.user_feature,
            "agent": self.agent,
        }


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
    fill = {"active_users": 0}
    return DailyAggregates(
        workspace_feature=wf.fillna(fill).astype({"active_users": "int64"}).reset_index(),
        workspace_total=wt.fillna(fill).astype({"active_users": "int64"}).reset_index(),
        user_feature=uf.reset_index(),
        agent=ag.reset_index(),
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


def build_user_features(agg: DailyAggregates, as_of: date, active_within_days: int | None = 90) -> pd.DataFrame:
    """``user_behaviour`` features, one row per (workspace, user) active in ``active_within_days`` to ``as_of``."""
    T = pd.Timestamp(as_of)
    uf = _until(agg.user_feature, as_of)
    keys = ["workspace_id", "user_id"]
    if uf.empty:
        return pd.DataFrame(columns=[*keys, *USER_BEHAVIOUR.columns])
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
    return _finish(out, USER_BEHAVIOUR.dtypes, keys)


def build_agent_features(agg: DailyAggregates, as_of: date) -> pd.DataFrame:
    """``agent_daily`` features, one row per agent with calls in the 28 days to ``as_of``."""
    T = pd.Timestamp(as_of)
    keys = ["workspace_id", "agent_id"]
    ad = _until(agg.agent, as_of)
    ad = ad[(T - ad["day"]).dt.days < 28]
    if ad.empty:
        return pd.DataFrame(columns=[*keys, *AGENT_DAILY.columns])
    ad = ad.assign(agent_key=ad["workspace_id"] + "\x1f" + ad["agent_id"])
    full = complete_daily(ad, "agent_key", ["calls", "errors"], as_of)
    full = full[(T - full["day"]).dt.days < 28].copy()
    full["days_ago"] = (T - full["day"]).dt.days
    full["rate"] = full["errors"] / full["calls"].replace(0, np.nan)
    g = lambda lo, w: full[(full["days_ago"] >= lo) & (full["days_ago"] < lo + w)].groupby("agent_key")  # noqa: E731

    out = pd.DataFrame(index=full.groupby("agent_key").size().index)
    at = full[full["days_ago"] == 0].set_index("agent_key")
    out["calls_t"] = at["calls"]
    out["errors_t"] = at["errors"]
    out["error_rate_t"] = at["rate"]
    for w in (7, 28):
        stats = g(0, w)["rate"].agg(["mean", "std", "max"])
        for stat in ("mean", "std", "max"):
            out[f"error_rate_roll_{w}_{stat}"] = stats[stat]
    out["calls_roll_7_mean"] = g(0, 7)["calls"].mean()
    out["calls_roll_28_mean"] = g(0, 28)["calls"].mean()
    rate7 = g(0, 7)["errors"].sum() / g(0, 7)["calls"].sum().replace(0, np.nan)
    rate_prev7 = g(7, 7)["errors"].sum() / g(7, 7)["calls"].sum().replace(0, np.nan)
    out["error_rate_trend_7"] = rate7 - rate_prev7
    out["error_rate_zscore_t"] = (out["error_rate_t"] - out["error_rate_roll_28_mean"]) / out[
        "error_rate_roll_28_std"
    ].replace(0, np.nan)
    out["active_days_28"] = g(0, 28)["calls"].apply(lambda s: int((s > 0).sum()))
    split = out.index.str.split("\x1f", n=1)
    out.index = pd.MultiIndex.from_tuples([tuple(s) for s in split], names=keys)
    return _finish(out, AGENT_DAILY.dtypes, keys)
