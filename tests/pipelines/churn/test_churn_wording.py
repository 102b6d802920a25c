"""Churn wording: drivers (data from the model) -> risk-factor sentences and recommended actions."""
import numpy as np
import pandas as pd
import pytest

from pipelines.churn.wording import (
    ACTIONS,
    SCORE_COLUMNS,
    describe_driver,
    format_value,
    recommend_actions,
    risk_factors,
    with_words,
)


def test_format_value():
    assert format_value("active_days_28", 18.0) == "18"
    assert format_value("error_rate_28", 0.184) == "18%"
    assert format_value("credits_28", 1234.5) == "1,234.5"
    assert format_value("activity_slope_8w", -0.6) == "-0.6"
    assert format_value("credits_28", np.nan) == "unknown" and format_value("credits_28", None) == "unknown"


def test_driver_texts():
    row = {
        "active_days_28": 4, "active_days_prev_28": 18, "engagement_drop_28": 14, "recency_days": 12,
        "error_rate_28": 0.18, "errors_28": 9, "features_used_28": 1, "features_used_90": 3,
        "share_of_ws_credits_28": 0.6, "ws_credits_trend": 0.7,
    }
    assert describe_driver("active_days_28", row) == "active days in last 28 fell from 18 to 4"
    assert describe_driver("active_days_prev_28", row) == "active days in last 28 fell from 18 to 4"
    assert describe_driver("engagement_drop_28", row) == "active days in last 28 fell from 18 to 4 (change -14)"
    assert describe_driver("recency_days", row) == "no activity for 12 days"
    assert describe_driver("error_rate_28", row) == "error rate 18% in last 28 days"
    assert describe_driver("errors_28", row) == "9 failed calls in last 28 days (error rate 18%)"
    assert describe_driver("features_used_28", row) == "uses 1 feature (of 3 in last 90 days)"
    assert describe_driver("share_of_ws_credits_28", row) == (
        "accounts for 60% of workspace credits (last 28 days) in a shrinking workspace"
        " (credits at 70% of the 28 days before)"
    )
    assert describe_driver("recency_days", {"recency_days": np.nan}) == "days since the user's last active day: unknown"
    assert describe_driver("not_a_feature", {"not_a_feature": 2.5}) == "not_a_feature = 2.5"


def test_a_driver_row_becomes_a_risk_factor():
    row = {"active_days_28": 4.0, "active_days_prev_28": 18.0, "recency_days": 12.0}
    drivers = [
        {"feature": "active_days_28", "driver": "activity_drop", "contribution": 0.5, "value": 4.0},
        {"feature": "recency_days", "driver": "recency", "contribution": 0.4, "value": 12.0},
    ]
    assert risk_factors(drivers, row) == [
        {"feature": "active_days_28", "driver": "activity_drop", "contribution": 0.5, "value": 4.0,
         "direction": "raises risk", "text": "active days in last 28 fell from 18 to 4"},
        {"feature": "recency_days", "driver": "recency", "contribution": 0.4, "value": 12.0,
         "direction": "raises risk", "text": "no activity for 12 days"},
    ]


def test_recommend_actions_merges_and_prioritises():
    drivers = [
        {"feature": "active_days_28", "driver": "activity_drop", "text": "active days in last 28 fell from 18 to 4"},
        {"feature": "recency_days", "driver": "recency", "text": "no activity for 12 days"},
        {"feature": "error_rate_28", "driver": "errors", "text": "error rate 18% in last 28 days"},
    ]
    actions = recommend_actions(drivers, 0.85)
    assert [a["action_id"] for a in actions] == ["re_engagement_email", "support_follow_up"]
    assert actions[0]["reason"] == "active days in last 28 fell from 18 to 4; no activity for 12 days"
    assert actions[0]["drivers"] == ["active_days_28", "recency_days"]
    assert actions[0]["title"] == ACTIONS["re_engagement_email"]["title"]
    assert all(a["priority"] == "high" for a in actions)
    assert recommend_actions(drivers[2:], 0.1)[0]["priority"] == "low"
    assert recommend_actions([], 0.1) == []
    share = [{"feature": "share_of_ws_credits_28", "text": "accounts for 60% of workspace credits"}]
    assert recommend_actions(share, 0.5)[0]["action_id"] == "admin_outreach"  # driver from the column


@pytest.mark.parametrize("probability, priority", [
    (0.95, "high"), (0.7, "high"), (0.6999, "medium"), (0.4, "medium"), (0.3999, "low"), (0.0, "low"),
])
def test_probability_sets_the_priority(probability, priority):
    drivers = [{"feature": "recency_days", "driver": "recency", "text": "no activity for 12 days"}]
    assert [a["priority"] for a in recommend_actions(drivers, probability)] == [priority]
    fallback = recommend_actions([], probability)
    if priority == "low":
        assert fallback == []
    else:
        assert fallback == [{
            "action_id": "success_check_in", "title": "Customer success check-in",
            "reason": f"churn probability {probability:.0%}", "priority": priority, "drivers": [],
        }]


def test_with_words_builds_the_scores_frame():
    features = pd.DataFrame(
        {"active_days_28": [4, 20], "active_days_prev_28": [18, 20], "recency_days": [12.0, np.inf]},
        index=[7, 3],
    )
    scored = pd.DataFrame({
        "churn_probability": [0.8, 0.45],
        "risk_score": [80.0, 45.0],
        "drivers": [
            [{"feature": "active_days_28", "driver": "activity_drop", "contribution": 0.5, "value": 4.0}],
            [{"feature": "recency_days", "driver": "recency", "contribution": 0.1, "value": None}],
        ],
        "days_until_churn": pd.array([5, None], dtype="Int64"),
    }, index=[7, 3])
    out = with_words(scored, features)
    assert list(out.columns) == SCORE_COLUMNS and out.index.tolist() == [7, 3]
    assert out["days_until_churn"].dtype == "Int64" and out["days_until_churn"].isna().tolist() == [False, True]
    assert out.at[7, "risk_factors"][0]["text"] == "active days in last 28 fell from 18 to 4"
    assert out.at[3, "risk_factors"][0]["text"] == "days since the user's last active day: unknown"  # inf
    assert [a["priority"] for a in out.at[7, "recommended_actions"]] == ["high"]
    assert [a["priority"] for a in out.at[3, "recommended_actions"]] == ["medium"]
    empty = with_words(scored.iloc[:0], features.iloc[:0])
    assert list(empty.columns) == SCORE_COLUMNS and empty.empty
