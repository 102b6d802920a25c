"""Churn wording: risk-factor sentences and recommended actions, the product copy of churn scores.

The model (:mod:`models.churn`) returns per user the risk-raising drivers as data: the driver, its
strongest feature column, the summed log-odds contribution and the value. This module turns them
into the ``risk_factors`` and ``recommended_actions`` lists that are stored as JSON with each score:

* a risk factor is ``{"feature", "driver", "contribution", "value", "direction", "text"}``, where
  ``text`` describes the user's value in words (:func:`describe_driver`, using related columns of the
  same user, e.g. "active days in last 28 fell from 18 to 4");
* actions follow :data:`DRIVER_ACTIONS` (:func:`recommend_actions`); their priority is ``high`` from
  probability :data:`HIGH_RISK`, ``medium`` from :data:`MEDIUM_RISK`, else ``low``;
* the user's state (``active``, ``lapsing``, ``dormant``; :func:`models.churn.churn_state`) is the last
  entry of ``risk_factors``: ``{"feature": "silence_ratio", "driver": "state", "state", "contribution": 0,
  "value", "direction": "state", "text", "p_alive"}`` (:func:`state_factor`; context, not a SHAP
  contribution). ``p_alive`` (MBG/NBD) is the second score: 1 - p_alive ranks who has left rather than
  paused better than the 30-day probability does. The ``state`` column of ``analytics.churn_predictions``
  is generated from this entry (``sql/010_churn_state.sql``).

:func:`with_words` applies both to the frame :meth:`models.churn.ChurnModel.predict` returns.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.churn import DRIVER_OF_COLUMN
from pipelines.features.sets import USER_BEHAVIOUR

#: Columns of the scores frame, in order, once the words are added.
SCORE_COLUMNS = ["churn_probability", "risk_score", "risk_factors", "recommended_actions", "days_until_churn",
                 "state"]

#: Interventions, by id. ``recommend_actions`` picks them through :data:`DRIVER_ACTIONS`.
#:
#: ======================= ===================================== ==========================================
#: driver                  action id                             title
#: ======================= ===================================== ==========================================
#: recency, activity_drop  ``re_engagement_email``               Re-engagement email
#: narrow_usage            ``feature_training``                  Training on an unused feature
#: errors                  ``support_follow_up``                 Support follow-up after error spikes
#: workspace_decline       ``admin_outreach``                    Admin outreach (account manager)
#: low_usage               ``usage_review``                      Usage review with the user
#: tenure, or no driver    ``success_check_in``                  Customer success check-in
#: ======================= ===================================== ==========================================
ACTIONS: dict[str, dict[str, str]] = {
    "re_engagement_email": {
        "title": "Re-engagement email",
        "description": "Send a personal email with recent product news and a link back to their last work.",
    },
    "feature_training": {
        "title": "Training on an unused feature",
        "description": "Offer a short session or guide on a feature the workspace uses but this user does not.",
    },
    "support_follow_up": {
        "title": "Support follow-up after error spikes",
        "description": "Have support contact the user about the failing calls and confirm they are fixed.",
    },
    "admin_outreach": {
        "title": "Admin outreach (account manager)",
        "description": "Account manager contacts the workspace admin about the workspace's falling usage.",
    },
    "usage_review": {
        "title": "Usage review with the user",
        "description": "Share a summary of what they achieved and suggest a next use case.",
    },
    "success_check_in": {
        "title": "Customer success check-in",
        "description": "Ask whether the user reached their goal; for new users, whether onboarding finished.",
    },
}
DRIVER_ACTIONS: dict[str, str] = {
    "recency": "re_engagement_email",
    "activity_drop": "re_engagement_email",
    "narrow_usage": "feature_training",
    "errors": "support_follow_up",
    "workspace_decline": "admin_outreach",
    "tenure": "success_check_in",
    "low_usage": "usage_review",
}
FALLBACK_ACTION = "success_check_in"
_DESCRIPTIONS = {f.name: f.description for f in USER_BEHAVIOUR.features}
HIGH_RISK = 0.7
MEDIUM_RISK = 0.4

_PERCENT = {"frequency_90", "error_rate_28", "wow_ratio", "ws_credits_trend", "share_of_ws_credits_28", "p_alive"}


def format_value(column: str, value: float | None) -> str:
    """A feature value as the risk-factor texts write it (``18``, ``18%``, ``1,234.5``, ``-0.6``)."""
    if value is None or not np.isfinite(value):
        return "unknown"
    if column in _PERCENT:
        return f"{100 * value:.0f}%"
    if column == "activity_slope_8w":
        return f"{value:+.1f}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def _plural(n: float, word: str) -> str:
    return f"{format_value('', n)} {word}{'' if n == 1 else 's'}"


def describe_driver(column: str, row: Mapping[str, float]) -> str:
    """Words for one feature of one user, using related columns of ``row`` where present.

    Args:
        column: The feature that drives the risk.
        row: The user's feature values by column name (may hold NaN).

    Returns:
        A short phrase that includes the value, e.g. "active days in last 28 fell from 18 to 4".
    """
    def get(c: str) -> float | None:
        v = row.get(c)
        return None if v is None or not np.isfinite(v) else float(v)

    v = get(column)
    f = lambda c: format_value(c, get(c))  # noqa: E731
    if v is None:
        return f"{_DESCRIPTIONS.get(column, column)}: unknown"
    cur, prev = get("active_days_28"), get("active_days_prev_28")
    pair = cur is not None and prev is not None
    if column in ("active_days_28", "active_days_prev_28", "engagement_drop_28") and pair:
        if prev == cur:
            text = f"active on {f('active_days_28')} of the last 28 days (same as the 28 before)"
        else:
            trend = "fell" if prev > cur else "rose"
            text = f"active days in last 28 {trend} from {f('active_days_prev_28')} to {f('active_days_28')}"
        return text + (f" (change {format_value(column, -v)})" if column == "engagement_drop_28" else "")
    if column.startswith("weekly_active_w"):
        week = int(column.removeprefix("weekly_active_w"))
        return f"active on {_plural(v, 'day')} of the 7 days {7 * week}-{7 * week + 6} days ago"
    if column in ("features_used_28", "features_used_90") and get("features_used_28") is not None:
        text = f"uses {_plural(get('features_used_28'), 'feature')}"
        if get("features_used_90") is not None:
            return f"{text} (of {f('features_used_90')} in last 90 days)"
        return f"{text} in the last 28 days"
    ws_pair = get("ws_active_users_28") is not None and get("ws_users_ever") is not None
    if column in ("ws_active_users_28", "ws_users_ever") and ws_pair:
        return f"workspace has {_plural(get('ws_active_users_28'), 'active user')} (of {f('ws_users_ever')} ever)"
    if column == "share_of_ws_credits_28":
        text = f"accounts for {f(column)} of workspace credits (last 28 days)"
        trend = get("ws_credits_trend")
        if trend is not None and trend < 1:
            text += f" in a shrinking workspace (credits at {f('ws_credits_trend')} of the 28 days before)"
        return text
    if column == "errors_28" and get("error_rate_28") is not None:
        return f"{_plural(v, 'failed call')} in last 28 days (error rate {f('error_rate_28')})"
    templates = {
        "recency_days": lambda: (
            "last active on the as-of day (recency 0 days)" if v == 0 else f"no activity for {_plural(v, 'day')}"
        ),
        "tenure_days": lambda: (
            f"new user, first seen {_plural(v, 'day')} ago" if v < 30 else f"user for {_plural(v, 'day')}"
        ),
        "frequency_90": lambda: f"active on {f(column)} of days in the last 90",
        "active_days_7": lambda: f"active on {f(column)} of the last 7 days",
        "active_days_28": lambda: f"active on {f(column)} of the last 28 days",
        "active_days_prev_28": lambda: f"active on {f(column)} days in the 28 days before the last 28",
        "engagement_drop_28": lambda: f"active days changed by {format_value(column, -v)} vs the previous 28 days",
        "active_days_90": lambda: f"active on {f(column)} of the last 90 days",
        "activity_slope_8w": lambda: (
            f"weekly active days trending {'down' if v < 0 else 'up'} ({f(column)} days/week over 8 weeks)"
        ),
        "wow_ratio": lambda: f"activity in the last 7 days at {f(column)} of the week before",
        "calls_7": lambda: f"{_plural(v, 'call')} in the last 7 days",
        "calls_28": lambda: f"{_plural(v, 'call')} in the last 28 days",
        "credits_28": lambda: f"{f(column)} credits used in the last 28 days",
        "credits_90": lambda: f"{f(column)} credits used in the last 90 days",
        "credits_per_active_day_28": lambda: f"{f(column)} credits per active day (last 28 days)",
        "features_used_90": lambda: f"used {_plural(v, 'feature')} in the last 90 days",
        "errors_28": lambda: f"{_plural(v, 'failed call')} in last 28 days",
        "error_rate_28": lambda: f"error rate {f(column)} in last 28 days",
        "ws_active_users_28": lambda: f"workspace has {_plural(v, 'active user')} in the last 28 days",
        "ws_users_ever": lambda: f"workspace has {_plural(v, 'user')} in total",
        "ws_credits_trend": lambda: (
            f"workspace credits {'fell' if v < 1 else 'rose'} to {f(column)} of the previous 28 days"
        ),
        "silence_ratio": lambda: (
            f"no activity for {_plural(get('recency_days'), 'day')}, {v:.1f}x their usual gap of "
            f"{f('usual_gap_days')} days" if get("recency_days") is not None and get("usual_gap_days") is not None
            else f"silent for {v:.1f} usual gaps"
        ),
        "p_alive": lambda: f"probability still active given their rhythm and silence (MBG/NBD) {f(column)}",
        "active_days_365": lambda: f"active on {_plural(v, 'day')} in the last 365",
        "gap_mean_days": lambda: f"active every {f(column)} days on average over the last year",
        "usual_gap_days": lambda: f"usually active every {f(column)} days",
        "gap_cv": lambda: f"irregular rhythm (gaps between active days vary by {100 * v:.0f}% of their mean)",
        "longest_gap_days": lambda: f"longest break in the last year {_plural(v, 'day')}",
        "ws_usual_gap_days": lambda: f"workspace users are usually active every {f(column)} days",
    }
    if column in templates:
        return templates[column]()
    return f"{column} = {f(column)}"


def _priority(probability: float) -> str:
    return "high" if probability >= HIGH_RISK else "medium" if probability >= MEDIUM_RISK else "low"


def recommend_actions(drivers: list[dict[str, Any]], probability: float) -> list[dict[str, Any]]:
    """Interventions for one user from their drivers, through :data:`DRIVER_ACTIONS`.

    Drivers that map to the same action are merged; the order follows the strongest driver.
    Priority is ``high`` from probability 0.7, ``medium`` from 0.4, else ``low``. Without a mapped
    driver, users at medium or high risk get the fallback ``success_check_in``.

    Args:
        drivers: Risk factors of one user (:func:`risk_factors`): ``feature``, ``text`` and, where
            known, ``driver`` (else the driver of ``feature`` in ``models.churn.DRIVER_OF_COLUMN``).
        probability: The user's calibrated churn probability.

    Returns:
        ``[{"action_id", "title", "reason", "priority", "drivers"}]``; ``reason`` quotes the drivers.
    """
    priority = _priority(probability)
    actions: dict[str, dict[str, Any]] = {}
    for d in drivers:
        action_id = DRIVER_ACTIONS.get(d.get("driver") or DRIVER_OF_COLUMN.get(d["feature"], ""))
        if action_id is None:
            continue
        act = actions.setdefault(action_id, {
            "action_id": action_id, "title": ACTIONS[action_id]["title"], "reason": [],
            "priority": priority, "drivers": [],
        })
        act["reason"].append(d["text"])
        act["drivers"].append(d["feature"])
    if not actions and priority != "low":
        actions[FALLBACK_ACTION] = {
            "action_id": FALLBACK_ACTION, "title": ACTIONS[FALLBACK_ACTION]["title"],
            "reason": [f"churn probability {probability:.0%}"], "priority": priority, "drivers": [],
        }
    return [{**a, "reason": "; ".join(a["reason"])} for a in actions.values()]


def risk_factors(drivers: list[dict[str, Any]], row: Mapping[str, float]) -> list[dict[str, Any]]:
    """Risk factors of one user: each driver with ``direction`` and its sentence (:func:`describe_driver`).

    Args:
        drivers: The user's drivers from :meth:`models.churn.ChurnModel.explain` (or ``predict``'s
            ``drivers``): ``{"feature", "driver", "contribution", "value"}``.
        row: The user's feature values by column (NaN where missing or infinite).

    Returns:
        ``[{"feature", "driver", "contribution", "value", "direction", "text"}]``, in the drivers' order.
    """
    return [{**d, "direction": "raises risk", "text": describe_driver(d["feature"], row)} for d in drivers]


_STATE_TEXT = {
    "active": "active: last active {s} ago, within their usual rhythm (every {g} days)",
    "lapsing": "lapsing: no activity for {s}, {r:.1f}x their usual gap of {g} days",
    "dormant": "dormant: no activity for {s}, {r:.1f}x their usual gap of {g} days",
}


def state_factor(state: str, row: Mapping[str, float]) -> dict[str, Any]:
    """The state entry appended to a user's risk factors (see the module docstring)."""
    s, g = row.get("recency_days"), row.get("usual_gap_days")
    ratio = float(s) / float(g) if s is not None and g and np.isfinite(s) and np.isfinite(g) else None
    text = state if ratio is None else _STATE_TEXT[state].format(
        s=_plural(float(s), "day"), g=format_value("usual_gap_days", float(g)), r=ratio)
    p_alive = row.get("p_alive")
    return {"feature": "silence_ratio", "driver": "state", "state": state, "contribution": 0.0,
            "value": None if ratio is None else round(ratio, 4), "direction": "state", "text": text,
            "p_alive": None if p_alive is None or not np.isfinite(p_alive) else round(float(p_alive), 4)}


def _feature_values(features: pd.DataFrame) -> np.ndarray:
    """Float matrix of ``features`` with ``±inf`` as NaN: the values the model explained."""
    m = features.astype("float64").to_numpy(copy=True)
    m[~np.isfinite(m)] = np.nan
    return m


def with_words(scored: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The scores frame: :meth:`models.churn.ChurnModel.predict` output with its drivers put in words.

    Args:
        scored: ``churn_probability``, ``risk_score``, ``drivers`` and ``days_until_churn`` per user.
        features: The same users' feature columns (the model's ``feature_columns``), aligned by position.

    Returns:
        Frame on ``scored``'s index with :data:`SCORE_COLUMNS`: ``risk_factors`` from
        :func:`risk_factors` followed by the :func:`state_factor` entry (when ``scored`` has a ``state``),
        and ``recommended_actions`` from :func:`recommend_actions`.
    """
    if len(scored) != len(features):
        raise ValueError(f"scored has {len(scored)} rows but features has {len(features)}")
    if len(scored) == 0:
        return pd.DataFrame(columns=SCORE_COLUMNS, index=scored.index)
    columns = list(features.columns)
    values = _feature_values(features)
    factors = [
        risk_factors(d, dict(zip(columns, values[i]))) if d else []
        for i, d in enumerate(scored["drivers"])
    ]
    actions = [recommend_actions(f, p) for f, p in zip(factors, scored["churn_probability"])]
    states = scored["state"].to_numpy() if "state" in scored else np.full(len(scored), None)
    factors = [f + [state_factor(st, dict(zip(columns, values[i])))] if st is not None else f
               for i, (f, st) in enumerate(zip(factors, states))]
    return pd.DataFrame({  # arrays, not Series: by position, whatever the index
        "churn_probability": scored["churn_probability"].array,
        "risk_score": scored["risk_score"].array,
        "risk_factors": factors,
        "recommended_actions": actions,
        "days_until_churn": scored["days_until_churn"].array,
        "state": states,
    }, index=scored.index)
