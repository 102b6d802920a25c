"""The workspace_growth feature set on a hand-made event set: every number checked, against hand counts and
against a brute-force definition, with no leakage from events after the as-of date."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.features.builders import build_growth_features, daily_aggregates
from pipelines.features.gate import validate_features
from pipelines.features.sets import FEATURE_SETS, WORKSPACE_GROWTH

D0 = date(2026, 1, 1)
T = D0 + timedelta(days=60)
# user -> active days (offsets from D0) in workspace "w"
ACTIVE = {"a": [0, 1, 2, 10, 45], "b": [0, 30], "c": [5], "d": [28, 56]}


def _event(day: int, ws: str, user: str | None, agent: str | None = None, feature: str = "chat",
           hour: int = 9, status: str = "ok") -> tuple:
    t = datetime.combine(D0 + timedelta(days=day), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)
    return (t, ws, user, agent, feature, 1.0, status, 1)


def hand_made_events() -> pd.DataFrame:
    rows = [_event(d, "w", u) for u, days in ACTIVE.items() for d in days]
    rows += [_event(5, "w", "c", feature="search", hour=23), _event(5, "w", "c", status="error", hour=0)]  # same day
    rows += [_event(3, "w", None, agent="bot"), _event(2, "w", "a", agent="bot", feature="api")]  # agent traffic
    rows += [_event(0, "v", "z")] + [_event(d, "v", None, agent="cron") for d in range(0, 61, 3)]
    rows += [_event(d, "x", None, agent="only") for d in range(50, 61)]  # agent-only workspace
    rows += [_event(61, "w", "e"), _event(62, "w", "a"), _event(61, "x", "late")]  # after T: must change nothing
    return pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                       "status", "count"])


def _features(events: pd.DataFrame, as_of: date = T) -> pd.DataFrame:
    return build_growth_features(daily_aggregates(events), as_of)


def _row(frame: pd.DataFrame, ws: str, day: int) -> dict:
    r = frame[(frame["workspace_id"] == ws) & (frame["day"] == pd.Timestamp(D0 + timedelta(days=day)))]
    assert len(r) == 1
    return r.iloc[0][WORKSPACE_GROWTH.columns].to_dict()


def _expect(dau, wau, mau, new=0, returning=0, reactivated=0, lost=0, ever=0) -> dict:
    return {"dau": dau, "wau": wau, "mau": mau, "new_users": new, "returning_users": returning,
            "reactivated_users": reactivated, "lost_users": lost, "users_ever": ever}


@pytest.mark.parametrize("day, expected", [
    (0, _expect(2, 2, 2, new=2, ever=2)),                      # a and b start
    (1, _expect(1, 2, 2, returning=1, ever=2)),                # a again; b still in WAU and MAU
    (3, _expect(0, 2, 2, ever=2)),                             # agent events only: nobody active
    (5, _expect(1, 3, 3, new=1, ever=3)),                      # c: three events, one user-day
    (7, _expect(0, 2, 3, ever=3)),                             # b's day 0 leaves the 7-day window
    (10, _expect(1, 2, 3, returning=1, ever=3)),               # a back after 8 days: returning
    (27, _expect(0, 0, 3, ever=3)),
    (28, _expect(1, 1, 3, new=1, lost=1, ever=4)),             # d starts; b (last day 0) leaves the MAU
    (30, _expect(1, 2, 4, reactivated=1, ever=4)),             # b back after 30 > 28 days: reactivated
    (33, _expect(0, 2, 3, lost=1, ever=4)),                    # c (last day 5) leaves the MAU
    (38, _expect(0, 0, 2, lost=1, ever=4)),                    # a (last day 10) leaves the MAU
    (45, _expect(1, 1, 3, reactivated=1, ever=4)),             # a back after 35 days: reactivated
    (56, _expect(1, 1, 3, returning=1, ever=4)),               # d back after exactly 28 days: returning, not lost
    (58, _expect(0, 1, 2, lost=1, ever=4)),                    # b (last day 30) leaves the MAU
    (60, _expect(0, 1, 2, ever=4)),                            # T: the later events of e and a do not count
])
def test_each_number_on_a_hand_made_event_set(day, expected):
    assert _row(_features(hand_made_events()), "w", day) == expected


def test_other_workspaces_agent_only_and_the_grid():
    f = _features(hand_made_events())
    assert _row(f, "v", 0) == _expect(1, 1, 1, new=1, ever=1)
    assert _row(f, "v", 27) == _expect(0, 0, 1, ever=1)
    assert _row(f, "v", 28) == _expect(0, 0, 0, lost=1, ever=1)
    x = f[f["workspace_id"] == "x"]  # agent traffic only: rows from its first event, all zero
    assert x["day"].min() == pd.Timestamp(D0 + timedelta(days=50)) and len(x) == 11
    assert (x[WORKSPACE_GROWTH.columns] == 0).all().all()
    # one row per workspace and day from the first event to T, and nothing after T
    assert f.groupby("workspace_id").size().to_dict() == {"v": 61, "w": 61, "x": 11}
    assert f["day"].max() == pd.Timestamp(T) and not f.duplicated(["workspace_id", "day"]).any()
    assert list(f.columns) == ["workspace_id", "day", *WORKSPACE_GROWTH.columns]
    assert (f.dtypes[WORKSPACE_GROWTH.columns] == "int64").all()


def _brute_force(events: pd.DataFrame, ws: str, day: date, window: int = 28) -> dict:
    """The definitions, literally: sets of users per window, previous active days."""
    ev = events[(events["workspace_id"] == ws) & events["user_id"].notna()]
    days = ev.assign(d=ev["event_time"].dt.date)[["user_id", "d"]].drop_duplicates()
    days = days[days["d"] <= day]
    active = lambda lo, hi: set(days.loc[(days["d"] >= lo) & (days["d"] <= hi), "user_id"])
    today = active(day, day)
    out = {"dau": len(today), "wau": len(active(day - timedelta(days=6), day)),
           "mau": len(active(day - timedelta(days=window - 1), day)), "new_users": 0, "returning_users": 0,
           "reactivated_users": 0, "users_ever": days["user_id"].nunique()}
    for u in today:
        before = days.loc[(days["user_id"] == u) & (days["d"] < day), "d"]
        if before.empty:
            out["new_users"] += 1
        elif (day - before.max()).days <= window:
            out["returning_users"] += 1
        else:
            out["reactivated_users"] += 1
    gone = days[days["d"] == day - timedelta(days=window)]["user_id"]
    out["lost_users"] = sum(1 for u in gone if not active(day - timedelta(days=window - 1), day) & {u})
    return out


def test_every_day_matches_the_definitions_and_the_identities():
    events = hand_made_events()
    f = _features(events)
    for ws in ("w", "v"):
        for k in range(61):
            day = D0 + timedelta(days=k)
            assert _row(f, ws, k) == _brute_force(events, ws, day), (ws, day)
    assert (f["dau"] == f["new_users"] + f["returning_users"] + f["reactivated_users"]).all()
    for _, g in f.groupby("workspace_id"):
        change = g["mau"].diff().dropna().to_numpy()
        flows = (g["new_users"] + g["reactivated_users"] - g["lost_users"]).to_numpy()[1:]
        np.testing.assert_array_equal(change, flows)


def test_no_leakage_and_the_mau_window_setting():
    events = hand_made_events()
    cut = events[events["event_time"] < pd.Timestamp(T + timedelta(days=1), tz="UTC")]
    pd.testing.assert_frame_equal(_features(events), _features(cut))
    as_of_40 = _features(events, D0 + timedelta(days=40))
    full = _features(events)
    pd.testing.assert_frame_equal(as_of_40.reset_index(drop=True),
                                  full[full["day"] <= pd.Timestamp(D0 + timedelta(days=40))].reset_index(drop=True))
    wide = build_growth_features(daily_aggregates(events), T, mau_window_days=31)
    assert _row(wide, "w", 30)["reactivated_users"] == 0 and _row(wide, "w", 30)["returning_users"] == 1
    assert _row(wide, "w", 28)["mau"] == 4 and _row(wide, "w", 28)["lost_users"] == 0


def test_the_gate_accepts_the_set_and_catches_an_incoherent_row():
    f = _features(hand_made_events())
    assert "workspace_growth" in FEATURE_SETS and WORKSPACE_GROWTH.grain == "day"
    assert validate_features({"workspace_growth": f}, T).passed
    bad = f.copy()
    bad.loc[bad.index[5], "wau"] = bad.loc[bad.index[5], "mau"] + 1
    failed = {(r["name"], r.get("column")) for r in validate_features({"workspace_growth": bad}, T).results
              if not r["success"]}
    assert any(name == "column_order" for name, _ in failed)
    dup = pd.concat([f, f.iloc[:1]])
    assert not validate_features({"workspace_growth": dup}, T).passed
    assert build_growth_features(daily_aggregates(hand_made_events().iloc[:0]), T).empty
    agents = hand_made_events()
    agents = agents[agents["user_id"].isna()]  # a platform without user ids: rows of zeros, no error
    only = build_growth_features(daily_aggregates(agents), T)
    assert len(only) and (only[WORKSPACE_GROWTH.columns] == 0).all().all()
