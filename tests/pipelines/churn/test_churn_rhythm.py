"""Rhythm features and states on hand-made event sets: gaps, usual gap, silence, P(alive), point in time."""
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from models.churn import MBGNBD, churn_state, usual_gap
from pipelines.churn.train import user_states
from pipelines.features.builders import build_user_features, daily_aggregates

T = date(2026, 6, 30)


def _events(active: dict[str, list[int]], workspace: str = "w") -> pd.DataFrame:
    """One chat call per active day; ``active`` maps user -> days before T (0 = T itself)."""
    rows = [(datetime.combine(T - timedelta(days=d), datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=10),
             workspace, user, None, "chat", 1.0, "ok", 1) for user, days in active.items() for d in days]
    return pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                       "status", "count"])


def _daily(silent: int, days: int = 180) -> list[int]:
    return list(range(silent, silent + days))


USERS = {
    "daily_silent_10": _daily(10),  # a daily user silent 10 days: lapsing
    "daily_yesterday": _daily(1),
    "daily_silent_45": _daily(45),  # dormant
    "six_weekly_silent_30": [30 + 42 * k for k in range(8)],  # a six-weekly buyer silent 30 days: active
    "six_weekly_silent_200": [200 + 42 * k for k in range(4)],  # 200 > 3 x 42 days: lapsing, not dormant
    "weekly_silent_25": [25 + 7 * k for k in range(30)],  # 25 > 3 x 7: lapsing
    "weekly_silent_80": [80 + 7 * k for k in range(30)],  # 80 > 10 x 7: dormant
    "seen_once_5_days_ago": [5],  # the workspace's usual gap (7 days) stands in for their own: active
    "seen_once_30_days_ago": [30],  # 30 > 3 x the workspace's weekly gap: lapsing
}
EXPECTED = {
    "daily_silent_10": "lapsing", "daily_yesterday": "active", "daily_silent_45": "dormant",
    "six_weekly_silent_30": "active", "six_weekly_silent_200": "lapsing", "weekly_silent_25": "lapsing",
    "weekly_silent_80": "dormant", "seen_once_5_days_ago": "active", "seen_once_30_days_ago": "lapsing",
}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return build_user_features(daily_aggregates(_events(USERS)), T).set_index("user_id")


def test_states_on_hand_made_users(features):
    got = dict(zip(features.index, user_states(features)))
    assert got == EXPECTED


def test_state_rule_thresholds():
    # active up to max(3g, 7) days of silence, dormant beyond max(10g, 30), lapsing in between
    s = [0, 7, 8, 30, 31, 30, 126, 127, 420, 421]
    g = [1, 1, 1, 1, 1, 42, 42, 42, 42, 42]
    assert churn_state(s, g).tolist() == ["active", "active", "lapsing", "lapsing", "dormant",
                                          "active", "active", "lapsing", "lapsing", "dormant"]


def test_rhythm_columns_as_defined(features):
    six = features.loc["six_weekly_silent_30"]
    assert six["recency_days"] == 30 and six["active_days_365"] == 8
    assert six["gap_mean_days"] == 42 and six["gap_cv"] == 0 and six["longest_gap_days"] == 42
    ws_gap = features["ws_usual_gap_days"].iloc[0]
    assert (features["ws_usual_gap_days"] == ws_gap).all()
    # the workspace's usual gap: the median of its users' own mean gaps (1, 1, 1, 42, 42, 7, 7) = 7
    assert ws_gap == 7
    assert six["usual_gap_days"] == pytest.approx((7 * 42 + 2 * 7) / (7 + 2))
    assert six["silence_ratio"] == pytest.approx(30 / six["usual_gap_days"])
    once = features.loc["seen_once_30_days_ago"]
    assert once["usual_gap_days"] == ws_gap and once["gap_mean_days"] == ws_gap and once["longest_gap_days"] == 0
    assert usual_gap([0.0], [0], [np.nan]).tolist() == [7.0]  # no workspace gap: a week


def test_rhythm_features_are_point_in_time():
    events = _events(USERS)
    later = _events({u: [d - 20 for d in days if d >= 20] + [-3, -1] for u, days in USERS.items()}, workspace="w")
    ever = pd.concat([events, later[later["event_time"] > pd.Timestamp(T + timedelta(days=1), tz="UTC")]])
    before = build_user_features(daily_aggregates(events), T)
    after = build_user_features(daily_aggregates(ever), T)  # the same past plus activity after T
    pd.testing.assert_frame_equal(before, after)


def test_p_alive_in_unit_interval_and_falls_with_silence(features):
    assert features["p_alive"].between(0, 1).all()
    daily = features.loc[["daily_yesterday", "daily_silent_10", "daily_silent_45"], "p_alive"].to_numpy()
    assert daily[0] > 0.5 and np.all(np.diff(daily) < 0)
    model = MBGNBD(r=0.8, alpha=2.0, a=1.0, b=30.0)
    silence = np.arange(0, 200, 5)
    p = model.p_alive(np.full(len(silence), 20), 200 - silence, np.full(len(silence), 200))
    assert ((p > 0) & (p <= 1)).all() and np.all(np.diff(p) < 0)
    assert model.p_alive([0], [0], [10])[0] < 1  # seen once: may have left at once (MBG/NBD)
    with pytest.raises(ValueError):
        model.p_alive([1], [5], [3])  # last active day after the end of observation


def test_mbgnbd_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    n, truth = 4000, MBGNBD(r=0.8, alpha=2.0, a=1.0, b=20.0)
    lam, drop = rng.gamma(truth.r, 1 / truth.alpha, n), rng.beta(truth.a, truth.b, n)
    T_obs = rng.integers(60, 365, n).astype(float)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while rng.random() >= drop[i]:  # alive after the previous purchase (MBG: also after the first)
            t += rng.exponential(1 / lam[i])
            if t > T_obs[i]:
                break
            x[i], t_x[i] = x[i] + 1, t
    fit = MBGNBD.fit(x, t_x, T_obs)
    assert fit.r == pytest.approx(truth.r, rel=0.2) and fit.alpha == pytest.approx(truth.alpha, rel=0.3)
    assert fit.a / (fit.a + fit.b) == pytest.approx(truth.a / (truth.a + truth.b), rel=0.3)
