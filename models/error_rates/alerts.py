"""Alerts: a status and level per agent, the probability and expected date of a breach, and the reason in words.

Status, in this order of precedence:

* ``inactive``: no calls for ``inactive_days`` days: nothing to judge (no level);
* ``insufficient_volume``: fewer than ``min_calls_7d`` calls in 7 days: never an alert on a handful of calls;
* ``chronic``: the baseline itself is at the threshold ceiling (e.g. every call has failed since the first
  day): level ``critical``, a broken agent rather than an escalation;
* ``breach``: a breach is confirmed (``models.error_rates.breaches``): level ``critical``, probability 1;
* ``escalating``: P(breach within the horizon) at least ``watch``: level ``watch`` / ``warning`` /
  ``critical`` at the policy's probability cut-offs;
* ``ok``: otherwise (no level).

The reason names the level and the probability, then the strongest drivers of the escalation model for
this agent (SHAP contributions), each in words with the agent's own numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVELS = ("watch", "warning", "critical")
STATUSES = ("ok", "escalating", "breach", "chronic", "insufficient_volume", "inactive")


@dataclass(frozen=True)
class AlertPolicy:
    watch: float = 0.15
    warning: float = 0.35
    critical: float = 0.6
    min_calls_7d: float = 20
    inactive_days: int = 14
    new_agent_days: int = 7

    def __post_init__(self):
        if not 0 < self.watch <= self.warning <= self.critical <= 1:
            raise ValueError("alert cut-offs must satisfy 0 < watch <= warning <= critical <= 1, got "
                             f"{self.watch}, {self.warning}, {self.critical}")

    def level(self, p: np.ndarray) -> np.ndarray:
        return np.select([p >= self.critical, p >= self.warning, p >= self.watch], list(LEVELS[::-1]), default=None)


# feature -> driver family (one sentence per family)
FAMILIES = {
    **dict.fromkeys(("z_1", "excess_1", "z_1_prev", "z_2", "elevated_both", "threshold_gap_1"), "today"),
    **dict.fromkeys(("z_3", "excess_3", "calls_at_risk_3", "threshold_gap_3", "z_7", "excess_7"), "recent"),
    **dict.fromkeys(("trend_3", "slope_7", "accel_3"), "trend"),
    **dict.fromkeys(("ws_fail_share_1", "ws_fail_share_3", "ws_fail_excess", "ws_fail_excess_1", "ws_fail_trend"),
                    "users"),
    "user_fail_share_3": "agent_users",
    "ws_other_agents_elevated": "other_agents",
    **dict.fromkeys(("platform_elevated_1", "platform_elevated_3"), "platform"),
    **dict.fromkeys(("log_calls_7", "log_calls_28", "baseline_log_calls", "calls_trend", "active_days_7",
                     "active_days_28", "days_since_call"), "volume"),
    "age_days": "age",
    **dict.fromkeys(("days_since_breach", "breaches_90"), "history"),
    "elevated_days": "persistence",
    "baseline_vs_prior": "peers",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


def _sentence(family: str, r) -> str:
    if family == "today":
        return (f"{int(r.errors_t)} of {int(r.calls_t)} calls failed on {r.day:%Y-%m-%d} ({_pct(r.error_rate_t)}, "
                f"baseline {_pct(r.baseline_rate)})")
    if family == "recent":
        return (f"failure rate {_pct(r.rate_3)} over the last 3 days vs a {_pct(r.baseline_rate)} baseline, "
                f"about {r.calls_at_risk_3:.0f} more failed calls than usual")
    if family == "trend":
        rising = "rising" if r.slope_7 > 0 else "falling"
        return f"the failure rate is {rising} over the last week" + (" and accelerating" if r.accel_3 > 0.3 else "")
    if family == "users":
        return f"{_pct(r.ws_fail_share_1)} of the workspace's active users saw a failed call on {r.day:%Y-%m-%d}"
    if family == "agent_users":
        return f"{_pct(r.user_fail_share_3)} of the agent's users saw a failed call in 3 days"
    if family == "other_agents":
        return f"{_pct(r.ws_other_agents_elevated)} of the workspace's other agents are failing more than usual too"
    if family == "platform":
        return f"{_pct(r.platform_elevated_1)} of all agents are failing more than usual (a platform-wide pattern)"
    if family == "volume":
        return f"{int(r.calls_7)} calls in the last 7 days"
    if family == "age":
        return f"{int(r.age_days)} days since its first call"
    if family == "history":
        return f"{int(r.breaches_90)} breach(es) in the last 90 days"
    if family == "persistence":
        return f"failing above normal for {int(r.elevated_days)} day(s) in a row"
    return f"its baseline ({_pct(r.baseline_rate)}) is far from its workspace x feature norm ({_pct(r.prior_rate)})"


SYMPTOMS = ("today", "recent", "trend", "users", "agent_users", "other_agents", "persistence")


def drivers(row, names: list[str], contrib: np.ndarray, top: int = 3, only: tuple[str, ...] | None = None) -> list[dict]:
    """The ``top`` driver families pushing the probability up for one row, strongest first (``only``: these
    families)."""
    by_family: dict[str, float] = {}
    for name, c in zip(names, contrib):
        fam = FAMILIES.get(name, "peers")
        if only is None or fam in only:
            by_family[fam] = by_family.get(fam, 0.0) + float(c)
    ranked = sorted(((c, f) for f, c in by_family.items() if c > 0), reverse=True)[:top]
    return [{"driver": f, "contribution": round(c, 4), "text": _sentence(f, row)} for c, f in ranked]


def build_alerts(frame: pd.DataFrame, p: np.ndarray, days: np.ndarray, contrib: np.ndarray, names: list[str],
                 policy: AlertPolicy, as_of, ceiling: float) -> pd.DataFrame:
    """One alert row per agent of ``frame`` (features as of ``as_of``, plus ``threshold``, ``in_breach``,
    ``breach_since`` and ``first_call``); sorted by risk (level, then probability)."""
    as_of = pd.Timestamp(as_of)
    out = frame[["workspace_id", "agent_id"]].copy()
    f = frame.reset_index(drop=True)
    n = len(f)
    inactive = (f["days_since_call"] >= policy.inactive_days).to_numpy()
    low = (f["calls_7"] < policy.min_calls_7d).to_numpy() & ~inactive
    chronic = (f["baseline_rate"] >= ceiling).to_numpy() & ~inactive & ~low
    breach = f["in_breach"].to_numpy(dtype=bool) & ~inactive & ~low & ~chronic
    judged = ~(inactive | low | chronic | breach)
    prob = np.where(judged, p, np.where(breach | chronic, 1.0, np.nan))
    level = np.where(judged, policy.level(np.nan_to_num(p)), None)
    level = np.where(breach | chronic, "critical", level)
    status = np.select([inactive, low, chronic, breach, judged & (level != None)],  # noqa: E711
                       ["inactive", "insufficient_volume", "chronic", "breach", "escalating"], default="ok")
    exp_days = np.where(judged & (level != None), np.rint(days), np.nan)  # noqa: E711
    breach_date = [as_of + pd.Timedelta(days=int(d)) if np.isfinite(d) else pd.NaT for d in exp_days]
    since = pd.to_datetime(f["breach_since"])
    breach_date = np.where(breach, since, pd.to_datetime(pd.Series(breach_date))).astype("datetime64[ns]")

    reasons, driver_lists = [], []
    for i in range(n):
        r = f.iloc[i]
        new = r.age_days < policy.new_agent_days
        note = (f" New agent (first call {pd.Timestamp(r.first_call):%Y-%m-%d}): its baseline is mostly borrowed from its "
                "workspace and feature." if new else "")
        if inactive[i]:
            last = as_of - pd.Timedelta(days=int(r.days_since_call))
            reasons.append(f"No calls for {int(r.days_since_call)} days (last on {last:%Y-%m-%d}): nothing to judge.")
            driver_lists.append([])
            continue
        if low[i]:
            reasons.append(f"Too little traffic to judge: {int(r.calls_7)} calls in the last 7 days (at least "
                           f"{policy.min_calls_7d:g} needed); baseline {_pct(r.baseline_rate)}." + note)
            driver_lists.append([])
            continue
        if chronic[i]:
            reasons.append(f"Chronic failure, not an escalation: {_pct(r.rate_7)} of calls failed over 7 days and the "
                           f"baseline is {_pct(r.baseline_rate)} (first call {pd.Timestamp(r.first_call):%Y-%m-%d}).")
            driver_lists.append([{"driver": "chronic", "contribution": None, "text": "baseline at the ceiling"}])
            continue
        ds = drivers(r, names, contrib[i], only=SYMPTOMS if breach[i] else None)
        driver_lists.append(ds)
        words = "; ".join(d["text"] for d in ds)
        if breach[i]:
            reasons.append(f"In breach since {since[i]:%Y-%m-%d}: failure rate {_pct(r.rate_3)} over 3 days, threshold "
                           f"{_pct(r.threshold)}, baseline {_pct(r.baseline_rate)}" + (f"; {words}" if words else "")
                           + "." + note)
        elif level[i] is not None:
            reasons.append(f"{level[i].capitalize()}: {prob[i]:.0%} chance the failure rate crosses its "
                           f"{_pct(r.threshold)} threshold within the horizon, expected by "
                           f"{pd.Timestamp(breach_date[i]):%Y-%m-%d}" + (f"; {words}" if words else "") + "." + note)
        else:
            reasons.append(f"Normal: {prob[i]:.0%} chance of crossing its {_pct(r.threshold)} threshold; failure rate "
                           f"{_pct(r.rate_7)} over 7 days, baseline {_pct(r.baseline_rate)}." + note)
    out = out.reset_index(drop=True)
    out["status"], out["alert_level"], out["probability"] = status, level, prob
    out["expected_breach_date"] = breach_date
    out["threshold"] = f["threshold"].to_numpy()
    out["current_rate"] = f["rate_3"].to_numpy()
    out["baseline_rate"] = f["baseline_rate"].to_numpy()
    out["calls_last_7d"] = f["calls_7"].to_numpy().astype("int64")
    out["errors_last_7d"] = f["errors_7"].to_numpy().astype("int64")
    out["trend_per_day"] = f["rate_trend_per_day"].to_numpy() if "rate_trend_per_day" in f else np.nan
    out["failing_users_share"] = f["ws_fail_share_1"].to_numpy()
    out["calls_at_risk"] = f["calls_at_risk_3"].to_numpy()
    out["reason"], out["drivers"] = reasons, driver_lists
    rank = pd.Series(out["alert_level"]).map({"critical": 3, "warning": 2, "watch": 1}).fillna(0).to_numpy()
    out["risk_rank"] = rank * 10 + np.nan_to_num(out["probability"].to_numpy(dtype=float), nan=-1)
    return out.sort_values(["risk_rank", "workspace_id", "agent_id"], ascending=[False, True, True]).reset_index(drop=True)
