"""Growth projections for a set of workspaces as of a date: eligibility, the ensemble, paths, scenarios,
milestones and goals. ``pipelines.growth.shard`` runs it for the holdout and for production.

Per workspace, from the ``workspace_growth`` feature set (exact DAU/WAU/MAU per day):
1. **Eligibility**: at least ``growth_min_history_days`` days since its first event and
   ``growth_min_active_users`` users in the MAU window ending the as-of date, else ``insufficient_data``
   with the counts (an agent-only workspace has no users; one that started yesterday has 1 day).
2. **Ensembles**, one per metric over the eligible workspaces' series (``growth_members``; DAU is noisy and
   weekly, MAU smooth, and different members win on each): weights per volume group from a rolling-origin
   backtest (``growth_backtest_windows`` cutoffs ``growth_backtest_step_days`` apart, 90-day horizon), members
   fitted once and conditioned on later history. Sign-up bursts are cleaned first (``cohorts``).
3. **Paths** (``sample_paths``): the point forecast times the backtest's centred log errors, drawn as whole
   (workspace, cutoff) units of the three metrics, made coherent; scenarios are the P10/P50/P90 of the paths and
   the 95% interval their P2.5/P97.5.
4. **Milestones** (the next two round numbers above the as-of value; for DAU above the last 7 days' peak, as a
   weekday peak would otherwise be a trivial milestone) and **goals**, read off the same paths.

Training and scoring are split (README, "Retraining and scoring"): step 2's backtest (weights per volume group)
and step 3's error bank are what training decides. Given a ``StoredChoices`` (a version's scoring artifact,
``pipelines.growth.artifact``), ``project`` runs no backtest: each metric's members are refitted on the latest
history and combined with the stored weights (``models.forecasting.stored.StoredEnsemble``), and the paths are
drawn from the stored error bank. Steps 1 and 4 run the same either way.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import Settings
from pipelines.growth.cohorts import LOOKBACK_DAYS, clean, future, one_day_cohorts
from pipelines.growth.sample_paths import (
    MEMBERS,
    METRICS,
    QUANTILES,
    SCENARIOS,
    ErrorBank,
    build_members,
    carried_over,
    goal_projection,
    milestone,
    nice_thresholds,
    scenario_quantiles,
    simulate,
    size_groups,
    stable_seed,
)

log = logging.getLogger(__name__)

BANK_HORIZON_DAYS = 90  # backtest horizon: the error paths are calibrated this far, extrapolated beyond
MAX_GOAL_DAYS = 365




def growth_members(settings: Settings) -> list:
    """The ensemble's members (``sample_paths.MEMBERS``), plus Prophet when ``growth_include_prophet``."""
    names = (*MEMBERS, *(("Prophet",) if settings.growth_include_prophet else ()))
    return build_members(names, settings.holiday_country, settings.threads)


def ensemble_params(settings: Settings) -> dict:
    """Ensemble arguments besides the members."""
    return {"backtest_h": BANK_HORIZON_DAYS, "n_windows": settings.growth_backtest_windows,
            "step": settings.growth_backtest_step_days, "refit": False, "conformal": False, "n_jobs": settings.threads,
            "seed": 0}


def eligibility(growth: pd.DataFrame, as_of: date, settings: Settings) -> pd.DataFrame:
    """Per workspace with rows up to ``as_of``: ``status`` (``success`` or ``insufficient_data``), ``reason`` and
    the counts behind it (``history_days``, ``active_users`` in the MAU window, ``users_ever``, ``dau``)."""
    g = growth[growth["day"] <= pd.Timestamp(as_of)]
    if g.empty:
        return pd.DataFrame(columns=["workspace_id", "status", "reason", "history_days", "active_users",
                                     "users_ever", "dau"])
    by = g.groupby("workspace_id", sort=True)
    last = g[g["day"] == pd.Timestamp(as_of)].set_index("workspace_id")
    out = pd.DataFrame({"history_days": (pd.Timestamp(as_of) - by["day"].min()).dt.days + 1})
    for col, src in (("active_users", "mau"), ("users_ever", "users_ever"), ("dau", "dau")):
        out[col] = last[src].reindex(out.index).fillna(0).astype(int)
    W, min_days, min_users = (settings.growth_mau_window_days, settings.growth_min_history_days,
                              settings.growth_min_active_users)
    reasons = []
    for r in out.itertuples():
        why = []
        if r.users_ever == 0:
            why.append("no user activity: events without a user id (e.g. agent-only traffic) do not count")
        elif r.active_users == 0:
            why.append(f"no active users in the last {W} days ({r.users_ever} users before): no one left to project")
        else:
            if r.history_days < min_days:
                why.append(f"{r.history_days} days of history (at least {min_days} needed)")
            if r.active_users < min_users:
                why.append(f"{r.active_users} active users in the last {W} days (at least {min_users} needed)")
        reasons.append("; ".join(why) or None)
    out["reason"] = reasons
    out["status"] = np.where(out["reason"].isna(), "success", "insufficient_data")
    return out.reset_index()[["workspace_id", "status", "reason", "history_days", "active_users", "users_ever",
                              "dau"]]


def long_series(growth: pd.DataFrame, workspaces, until: date, history_days: int) -> pd.DataFrame:
    """``(unique_id = '<workspace>|<metric>', ds, y)`` for the workspaces, the ``history_days`` days to ``until``."""
    g = growth[growth["workspace_id"].isin(set(workspaces)) & (growth["day"] <= pd.Timestamp(until))
               & (growth["day"] > pd.Timestamp(until) - pd.Timedelta(days=history_days))]
    long = g.melt(id_vars=["workspace_id", "day"], value_vars=list(METRICS), var_name="metric", value_name="y")
    long["unique_id"] = long["workspace_id"] + "|" + long["metric"]
    return long.rename(columns={"day": "ds"})[["unique_id", "ds", "y"]].astype({"y": float})


def recency(user_days: pd.DataFrame, as_of: date, window: int) -> dict[str, np.ndarray]:
    """Days since each user's last active day (0..window-1) per workspace, for users active in the window
    ending ``as_of``; ``user_days``: the daily aggregates' ``user_feature`` rows."""
    T = pd.Timestamp(as_of)
    ud = user_days[(user_days["day"] <= T) & (user_days["day"] > T - pd.Timedelta(days=window))]
    last = ud.groupby(["workspace_id", "user_id"], sort=False)["day"].max()
    r = (T - last).dt.days
    return {ws: grp.to_numpy() for ws, grp in r.groupby(level="workspace_id")}


def error_bank(backtest: pd.DataFrame, groups: dict[str, str], horizon: int) -> ErrorBank:
    """Log-scale errors of the ensemble's backtest as (workspace, cutoff) units of the three metrics; units
    missing a metric or a step are left out. They are not centred: their median carries the ensemble's typical
    miss (on the synthetic platform, growth forecast too low) into the paths. Measured on the 1,000-workspace
    holdout, centring them put the realised value at or above ``likely`` on 64% of days instead of 58%, with the
    same MASE and coverage."""
    bt = backtest[["unique_id", "ds", "cutoff", "y", "Ensemble"]].copy()
    bt[["workspace_id", "metric"]] = bt["unique_id"].str.split("|", n=1, expand=True)
    bt["step"] = (bt["ds"] - bt["cutoff"]).dt.days - 1
    bt["e"] = np.log1p(bt["y"].clip(lower=0)) - np.log1p(bt["Ensemble"].clip(lower=0))
    bt = bt[bt["step"] < horizon]
    wide = bt.pivot_table(index=["workspace_id", "cutoff"], columns=["metric", "step"], values="e", aggfunc="first")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([list(METRICS), range(horizon)])).dropna()
    errors = wide.to_numpy().reshape(len(wide), len(METRICS), horizon)
    group = np.array([groups.get(ws, "all") for ws in wide.index.get_level_values("workspace_id")], dtype=object)
    return ErrorBank(errors=errors, group=group)


@dataclass
class StoredChoices:
    """What scoring takes from a training run: the members, each metric's stored Ensemble state (weights, groups,
    chosen specifications) and the error bank the paths are drawn from."""

    members: list[str]
    states: dict  # metric -> models.forecasting.stored.EnsembleState
    bank: ErrorBank


@dataclass
class Projection:
    """Everything projected as of one date; frames keyed by the source workspace id."""

    as_of: date
    scenarios: pd.DataFrame  # workspace_id, target_metric, prediction_date, q025, q10, q50, q90, q975
    milestones: pd.DataFrame
    goals: pd.DataFrame
    point: pd.DataFrame  # workspace_id, target_metric, prediction_date, yhat (the ensemble mean, cohorts added)
    models: dict = field(default_factory=dict)  # metric -> its fitted Ensemble
    backtest: pd.DataFrame | None = None  # the ensembles' backtests, all metrics
    members: dict[str, pd.DataFrame] = field(default_factory=dict)  # member -> its point forecast, like ``point``
    bank: ErrorBank | None = None
    unknown: list[str] = field(default_factory=list)  # series scored with the default weights (stored choices)


def _frame(ws: list[str], values: np.ndarray, as_of: date, columns: list[str]) -> pd.DataFrame:
    """(n_ws, len(columns), 3, h) -> long rows (workspace_id, target_metric, prediction_date, *columns)."""
    h = values.shape[3]
    idx = pd.MultiIndex.from_product([ws, list(METRICS), range(1, h + 1)], names=["workspace_id", "target_metric",
                                                                                  "k"])
    out = pd.DataFrame(values.transpose(0, 2, 3, 1).reshape(-1, len(columns)), index=idx, columns=columns)
    out = out.reset_index()
    out["prediction_date"] = pd.Timestamp(as_of) + pd.to_timedelta(out.pop("k"), unit="D")
    return out


def project(settings: Settings, growth: pd.DataFrame, user_days: pd.DataFrame, workspaces: list[str], as_of: date,
            h: int, goals: pd.DataFrame | None = None, members: bool = False,
            stored: StoredChoices | None = None) -> Projection:
    """Fit, simulate and read off scenarios, milestones and goals for ``workspaces`` (all eligible) as of ``as_of``.

    Args:
        growth: ``workspace_growth`` rows (history up to ``as_of`` is used, nothing after).
        user_days: ``user_feature`` daily rows covering the MAU window ending ``as_of``.
        h: Days to project.
        goals: ``growth_goals`` rows (``goal_id``, ``workspace_id`` as the source id, ``target_metric``,
            ``target_value``, ``due_date``) to project; others are ignored.
        members: Also return each fitted member's point forecast (for the holdout tables).
        stored: Score with a trained version's choices (no backtest): its weights per series (series it does not
            know: the mean stored mix, listed in ``unknown``) and its error bank.
    """
    from models.forecasting import Ensemble
    from models.forecasting.stored import StoredEnsemble

    W = settings.growth_mau_window_days
    workspaces = sorted(workspaces)
    goals = goals if goals is not None and len(goals) else pd.DataFrame(
        columns=["goal_id", "workspace_id", "target_metric", "target_value", "due_date"])
    goals = goals[goals["workspace_id"].isin(set(workspaces))]
    due_days = (pd.to_datetime(goals["due_date"]) - pd.Timestamp(as_of)).dt.days
    h_all = int(max(h, due_days[due_days <= MAX_GOAL_DAYS].max() if (due_days <= MAX_GOAL_DAYS).any() else h))

    mine = growth[growth["workspace_id"].isin(set(workspaces)) & (growth["day"] <= pd.Timestamp(as_of))]
    bursts = one_day_cohorts(mine, user_days, as_of, W)
    series = long_series(clean(mine, bursts, W), workspaces, as_of, settings.forecast_history_days)
    models, rows, unknown = {}, {}, []
    yhat = np.empty((len(workspaces), len(METRICS), h_all))
    for j, metric in enumerate(METRICS):  # one ensemble per metric: DAU is noisy and weekly, MAU smooth
        part = series[series["unique_id"].str.endswith("|" + metric)]
        if stored is None:
            model = Ensemble(members=growth_members(settings), **ensemble_params(settings)).fit(part, freq="D")
        else:
            model = StoredEnsemble(stored.states[metric], build_members(
                stored.members, settings.holiday_country, settings.threads)).fit(part, freq="D")
            unknown += model.unknown_
        order = {uid: i for i, uid in enumerate(model.panel_.ids)}
        rows[metric] = np.array([order[f"{ws}|{metric}"] for ws in workspaces])
        yhat[:, j] = model.predict_arrays(h_all, [])[0][rows[metric]]
        models[metric] = model
    backtest = pd.concat([m.backtest_ for m in models.values()], ignore_index=True) if stored is None else None

    hist = growth[growth["workspace_id"].isin(set(workspaces)) & (growth["day"] <= pd.Timestamp(as_of))]
    last = hist[hist["day"] == pd.Timestamp(as_of)].set_index("workspace_id").reindex(workspaces)
    recent_rows = hist[hist["day"] > pd.Timestamp(as_of) - pd.Timedelta(days=W)]
    recent = {ws: g.sort_values("day")[list(METRICS)].to_numpy(float).T for ws, g in recent_rows.groupby("workspace_id")}
    dau_peak = recent_rows[recent_rows["day"] > pd.Timestamp(as_of) - pd.Timedelta(days=7)].groupby("workspace_id")[
        "dau"].max()
    groups = dict(zip(workspaces, size_groups(last["mau"].to_numpy())))
    bank = stored.bank if stored is not None else None
    if stored is None and len(backtest):  # the backtest horizon is shorter than 90 days when the history is short
        h_bt = int((backtest["ds"] - backtest["cutoff"]).dt.days.max())
        bank = error_bank(backtest, groups, min(h_bt, h_all))
    if bank is None or not len(bank.group):
        raise RuntimeError("no complete backtest window to draw error paths from: history too short for a "
                           f"{BANK_HORIZON_DAYS}-day backtest")
    since = recency(user_days, as_of, W)

    adds = np.zeros_like(yhat)  # sign-up bursts' users until they age out of the windows
    for ws, part in bursts.groupby("workspace_id"):
        adds[workspaces.index(ws)] = future(part, ws, as_of, h_all, W)
    quantiles = np.empty((len(workspaces), len(QUANTILES), len(METRICS), h))
    milestone_rows, goal_rows = [], []
    for i, ws in enumerate(workspaces):
        carried = carried_over(since.get(ws, np.zeros(0)), h_all, W)
        paths = simulate(yhat[i], bank, groups[ws], settings.growth_paths, stable_seed("growth", ws, as_of),
                         recent.get(ws), carried, W, adds[i] if adds[i].any() else None)
        quantiles[i] = scenario_quantiles(paths[..., :h])
        for j, metric in enumerate(METRICS):
            current = float(last.at[ws, metric])
            reference = float(dau_peak.get(ws, current)) if metric == "dau" else current
            for threshold in nice_thresholds(reference):
                milestone_rows.append({"workspace_id": ws, "target_metric": metric, "kind": "round",
                                       "current_value": current, **milestone(paths[:, j, :h], threshold, as_of)})
            for g in goals[(goals["workspace_id"] == ws) & (goals["target_metric"] == metric)].itertuples():
                k = (pd.Timestamp(g.due_date) - pd.Timestamp(as_of)).days
                if k < 1 or k > MAX_GOAL_DAYS:
                    continue  # past due or out of range: ``goal_outside_paths``
                goal_rows.append({"goal_id": g.goal_id, "workspace_id": ws, "target_metric": metric,
                                  "target_value": float(g.target_value), "due_date": pd.Timestamp(g.due_date).date(),
                                  **goal_projection(paths[:, j], current, float(g.target_value),
                                                    pd.Timestamp(g.due_date).date(), as_of)})
                milestone_rows.append({"workspace_id": ws, "target_metric": metric, "kind": "goal",
                                       "current_value": current,
                                       **milestone(paths[:, j, :max(k, h)], float(g.target_value), as_of)})
    names = ["q025", "q10", "q50", "q90", "q975"]
    scenarios = _frame(workspaces, quantiles, as_of, names)
    point = _frame(workspaces, (yhat + adds)[:, None, :, :h], as_of, ["yhat"])
    fitted = {}
    if members:
        for j, metric in enumerate(METRICS):
            for member in models[metric].members_:
                m_mean = member.predict_arrays(h, [])[0][rows[metric]] + adds[:, j, :h]
                frame = _frame(workspaces, np.repeat(m_mean[:, None, None], 3, axis=2), as_of, ["yhat"])
                fitted.setdefault(member.name, []).append(frame[frame["target_metric"] == metric])
        fitted = {name: pd.concat(parts, ignore_index=True) for name, parts in fitted.items()}
    milestones = pd.DataFrame(milestone_rows).drop_duplicates(["workspace_id", "target_metric", "kind", "threshold"])
    return Projection(as_of=as_of, scenarios=scenarios, milestones=milestones, goals=pd.DataFrame(goal_rows),
                      point=point, models=models, backtest=backtest, members=fitted, bank=bank, unknown=unknown)


def goal_outside_paths(goals: pd.DataFrame, growth: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Goals the paths do not cover: ``past_due`` (due on or before ``as_of``: the realised value on the due
    date and whether it met the target) and ``beyond_range`` (due more than a year ahead: the growth it needs)."""
    rows = []
    last = growth[growth["day"] == pd.Timestamp(as_of)].set_index("workspace_id")
    values = growth.set_index(["workspace_id", "day"])
    for g in goals.itertuples():
        due = pd.Timestamp(g.due_date)
        k = (due - pd.Timestamp(as_of)).days
        current = float(last[g.target_metric].get(g.workspace_id, np.nan)) if g.workspace_id in last.index else None
        base = {"goal_id": g.goal_id, "workspace_id": g.workspace_id, "target_metric": g.target_metric,
                "target_value": float(g.target_value), "due_date": due.date(), "current_value": current}
        if k < 1:
            realised = values[g.target_metric].get((g.workspace_id, due))
            rows.append({**base, "status": "past_due", "realised_value": None if realised is None else float(realised),
                         "met": None if realised is None else bool(realised >= g.target_value)})
        elif k > MAX_GOAL_DAYS:
            from pipelines.growth.sample_paths import growth_per_30d

            rows.append({**base, "status": "beyond_range",
                         "required_growth_30d": None if current is None else growth_per_30d(current, g.target_value, k)})
    return pd.DataFrame(rows)


def scenario_rows(scenarios: pd.DataFrame) -> pd.DataFrame:
    """Scenario quantiles as ``analytics.predictions`` rows: worst/likely/best = P10/P50/P90, each with the
    projection's 95% interval (P2.5..P97.5); the 80% interval of ``likely`` is worst..best."""
    cols = ["q025", "q10", "q50", "q90", "q975"]
    parts = []
    for scenario, i in SCENARIOS.items():
        parts.append(scenarios.assign(scenario=scenario, predicted_value=scenarios[cols[i]],
                                      confidence_lower=scenarios["q025"], confidence_upper=scenarios["q975"]))
    out = pd.concat(parts, ignore_index=True)
    out["confidence_level"] = 0.95
    keep = ["workspace_id", "target_metric", "scenario", "prediction_date", "predicted_value", "confidence_lower",
            "confidence_upper", "confidence_level"]
    return out[keep].sort_values(["workspace_id", "target_metric", "scenario", "prediction_date"]).reset_index(drop=True)


def user_days_for(store_dir: Path, as_of: date, window: int, shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """The ``user_feature`` daily rows ``project`` needs: the MAU ``window`` (``recency``) and the burst lookback
    before it (``cohorts``); ``shard``: ``(k, n)``, only the workspaces of shard ``k`` of ``n``."""
    window = window + LOOKBACK_DAYS
    from pipelines.features.store import load_daily_aggregates

    uf = load_daily_aggregates(store_dir, as_of, since=as_of - timedelta(days=window - 1), only=("user_feature",),
                               shard=shard, columns=("workspace_id", "user_id", "day")).user_feature
    return uf[["workspace_id", "user_id", "day"]]
