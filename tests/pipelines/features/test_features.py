from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.features.builders import (
    build_agent_features,
    build_user_features,
    build_workspace_features,
    daily_aggregates,
    daily_series,
)
from pipelines.features.sets import (
    AGENT_DAILY,
    FEATURE_SETS,
    USER_BEHAVIOUR,
    WORKSPACE_DAILY,
)
from pipelines.features.store import build_feature_store, read_offline
from pipelines.ingest.extract import (
    dates_to_extract,
    extract,
    read_staged_events,
    staged_dates,
)
from pipelines.ingest.load import load_events
from tests.conftest import make_events

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)


def _all_features(events: pd.DataFrame, as_of: date) -> dict[str, pd.DataFrame]:
    agg = daily_aggregates(events)
    return {
        "workspace": build_workspace_features(agg, as_of),
        "user": build_user_features(agg, as_of),
        "agent": build_agent_features(agg, as_of),
    }


def test_features_match_their_declared_schema():
    feats = _all_features(make_events(3, 120), END)
    for frame, fs in ((feats["workspace"], WORKSPACE_DAILY), (feats["user"], USER_BEHAVIOUR),
                      (feats["agent"], AGENT_DAILY)):
        assert list(frame.columns[-len(fs.columns):]) == fs.columns
        assert not frame[fs.columns].isna().any().any()
        assert len(frame) > 0
    assert set(FEATURE_SETS) >= {"workspace_daily", "user_behaviour", "agent_daily", "workspace_hourly",
                                 "workspace_growth"}


def test_no_leakage_events_after_as_of_change_nothing():
    as_of = END - timedelta(days=20)
    events = make_events(3, 120, seed=1)
    before = _all_features(events[events["event_time"] < pd.Timestamp(as_of + timedelta(days=1), tz="UTC")], as_of)
    after = _all_features(events, as_of)  # same data plus 20 days after as_of
    for k in before:
        pd.testing.assert_frame_equal(before[k], after[k])


def test_user_features_are_computed_as_defined():
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rows = [(t0 + timedelta(days=d, hours=9), "w", "u", None, f, 2.0, "ok", 3)
            for d, f in ((0, "chat"), (10, "chat"), (25, "search"), (26, "chat"))]
    rows.append((t0 + timedelta(days=26, hours=10), "w", "u", None, "chat", 0.0, "error", 1))
    ev = pd.DataFrame(rows, columns=["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits",
                                     "status", "count"])
    f = build_user_features(daily_aggregates(ev), date(2026, 3, 28)).iloc[0]
    assert f["tenure_days"] == 28 and f["recency_days"] == 1
    assert f["active_days_7"] == 2 and f["active_days_28"] == 4
    assert f["features_used_28"] == 2 and f["calls_28"] == 13 and f["errors_28"] == 1
    assert f["error_rate_28"] == pytest.approx(1 / 13)
    assert f["weekly_active_w0"] == 2 and f["weekly_active_w2"] == 1 and f["weekly_active_w3"] == 1


def test_daily_series_zero_fills_gaps():
    ev = make_events(1, 30)
    ev = ev[(ev["event_time"].dt.day % 5) != 0]  # gaps
    s = daily_series(daily_aggregates(ev), END)
    assert s.groupby("unique_id").size().iloc[0] == 30 and (s["y"] == 0).sum() >= 5
    assert not s.duplicated(["unique_id", "ds"]).any()


def test_extract_backfills_then_rereads_late_window(clean_db, tmp_path):
    events = make_events(2, 40)
    events.to_csv(tmp_path / "e.csv", index=False)
    load_events(clean_db, tmp_path / "e.csv", tmp_path, now=NOW)
    staging = tmp_path / "staging"
    first = extract(clean_db, END - timedelta(days=5), staging, late_window_days=2)
    assert len(first.dates) == 35 and max(staged_dates(staging)) == END - timedelta(days=5)
    second = extract(clean_db, END, staging, late_window_days=2)
    # the never-staged days D-4, D-3 and the late window D-2..D
    assert second.dates == [END - timedelta(days=i) for i in range(4, -1, -1)]
    staged = read_staged_events(staging, END)
    assert len(staged) == len(events)
    again = extract(clean_db, END, staging, late_window_days=2)
    assert again.dates == [END - timedelta(days=i) for i in range(2, -1, -1)]
    pd.testing.assert_frame_equal(read_staged_events(staging, END), staged)


def test_dates_to_extract_rules():
    d = date(2026, 1, 10)
    assert dates_to_extract([], None, d, 3) == []
    assert dates_to_extract([], date(2026, 1, 8), d, 3) == [date(2026, 1, 8), date(2026, 1, 9), d]
    staged = [date(2026, 1, i) for i in range(1, 6)]
    got = dates_to_extract(staged, date(2026, 1, 1), d, 2)
    assert got == [date(2026, 1, i) for i in range(6, 11)]


def test_feature_store_end_to_end_is_idempotent(clean_db, tmp_path):
    make_events(3, 90).to_csv(tmp_path / "e.csv", index=False)
    load_events(clean_db, tmp_path / "e.csv", tmp_path, now=NOW)
    staging, store = tmp_path / "staging", tmp_path / "store"
    extract(clean_db, END, staging)

    def snapshot():
        with clean_db.connect() as conn:
            return (
                conn.execute(sa.text("select entity_type, entity_id, feature_set, features, computed_at, id"
                                     " from analytics.ml_features order by 1, 2, 3")).all(),
                conn.execute(sa.text("select * from analytics.workspace_daily_metrics order by 1, 2, 3")).all(),
            )

    s1 = build_feature_store(clean_db, staging, store, END)
    snap1 = snapshot()
    assert s1.refreshed_days == 90
    assert s1.rows["ml_features:workspace_daily"] == 3
    extract(clean_db, END, staging)  # re-stages the late window
    s2 = build_feature_store(clean_db, staging, store, END)
    assert s2.refreshed_days == 31  # the month holding the re-staged late window
    assert snapshot() == snap1
    users = read_offline(store, USER_BEHAVIOUR, END)
    assert len(users) == sum(r.feature_set == "user_behaviour" for r in snap1[0])
    assert sum(r.feature_set == "agent_daily" for r in snap1[0]) == len(read_offline(store, AGENT_DAILY, END))
    assert sum(r.feature_set == "workspace_hourly" for r in snap1[0]) == 3
    assert sum(r.feature_set == "workspace_growth" for r in snap1[0]) == 3  # the as-of day's row per workspace
    totals = pd.DataFrame(snap1[1]).query("dimension == 'total'")
    assert np.isclose(totals["credits"].sum(), make_events(3, 90)["credits"].sum())


def _stores(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"select * from analytics.{t} order by 1, 2, 3")).all()
                for t in ("workspace_daily_metrics", "agent_daily_metrics", "workspace_growth_metrics")} | {
            "ml_features": conn.execute(sa.text("select entity_type, entity_id, feature_set, features, as_of_date"
                                                " from analytics.ml_features order by 1, 2, 3")).all()}


def test_workspace_shards_build_the_same_store(clean_db, tmp_path):
    """Five workspace shards (one of them without workspaces) give the rows one build gives: every offline feature
    set, daily/agent/growth metrics and online features; the parts are merged and removed; the daily aggregates,
    built day by day, equal one aggregation of all events."""
    from core.shards import shard_of
    from pipelines.features.builders import daily_aggregates
    from pipelines.features.store import (
        BUILT_FEATURE_SETS,
        _daily_keys,
        load_daily_aggregates,
        merge_feature_shards,
        refresh_aggregates,
        shard_part_path,
    )

    events = make_events(4, 200, seed=3)  # longer than the agents' 180-day panel: the merge reads less
    events.to_csv(tmp_path / "e.csv", index=False)
    load_events(clean_db, tmp_path / "e.csv", tmp_path, now=NOW)
    staging = tmp_path / "staging"
    extract(clean_db, END, staging)
    assert len({shard_of(w, 5) for w in events["workspace_id"].unique()}) < 5  # an empty shard is covered
    whole = build_feature_store(clean_db, staging, tmp_path / "one", END)
    one = _stores(clean_db)
    sharded = build_feature_store(clean_db, staging, tmp_path / "five", END, n_shards=5)
    assert _stores(clean_db) == one
    assert sharded.rows == whole.rows and sharded.shards == 5
    for fs in BUILT_FEATURE_SETS:
        keys = [c for c in ("workspace_id", "user_id", "agent_id", "day") if c in read_offline(tmp_path / "one", fs, END)]
        a = read_offline(tmp_path / "one", fs, END).sort_values(keys, ignore_index=True)
        b = read_offline(tmp_path / "five", fs, END).sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=fs.name)
    # a retried merge finds the parts and writes the same files; a missing part is an explicit error
    before = {fs.name: read_offline(tmp_path / "five", fs, END) for fs in BUILT_FEATURE_SETS}
    merge_feature_shards(clean_db, tmp_path / "five", END, 5)
    for fs in BUILT_FEATURE_SETS:
        pd.testing.assert_frame_equal(read_offline(tmp_path / "five", fs, END), before[fs.name], obj=fs.name)
    assert _stores(clean_db) == one
    shard_part_path(tmp_path / "five", USER_BEHAVIOUR, END, 3, 5).unlink()
    with pytest.raises(RuntimeError, match="feature parts missing .*: user_behaviour shard 3;"):
        merge_feature_shards(clean_db, tmp_path / "five", END, 5)
    refresh_aggregates(staging, tmp_path / "five", END)  # the next run's refresh removes the parts
    assert not (tmp_path / "five" / "_shards").exists()
    from pipelines.features.hourly import HOURLY_DAYS, hourly_aggregates, load_hourly_aggregates

    since = END - timedelta(days=HOURLY_DAYS)
    hours = load_hourly_aggregates(tmp_path / "one", END, since).sort_values(["workspace_id", "hour"], ignore_index=True)
    direct_hours = hourly_aggregates(read_staged_events(staging, END, since=since))
    pd.testing.assert_frame_equal(hours, direct_hours[hours.columns].sort_values(["workspace_id", "hour"],
                                                                                ignore_index=True), check_dtype=False)
    stored = load_daily_aggregates(tmp_path / "one", END)
    pd.testing.assert_frame_equal(read_offline(tmp_path / "one", AGENT_DAILY, END), build_agent_features(stored, END))
    direct = daily_aggregates(read_staged_events(staging, END))
    for name, frame in direct.tables().items():
        keys = _daily_keys(name)
        got = getattr(stored, name).sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(got, frame[got.columns].sort_values(keys, ignore_index=True),
                                      check_dtype=False, obj=name)
