"""Data-quality gates: clean data passes; each kind of bad data fails the right expectation, with counts."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.features.builders import (
    build_agent_features,
    build_user_features,
    build_workspace_features,
    daily_aggregates,
)
from pipelines.features.gate import feature_bounds, validate_features
from pipelines.features.sets import FEATURE_SETS
from pipelines.ingest.extract import EVENT_SCHEMA, partition_path
from pipelines.ingest.gate import daily_row_counts, validate_raw_events
from pipelines.quality import QualityGateError, QualityReport, enforce
from tests.conftest import make_events

D = date(2026, 3, 31)


def _staged(events: pd.DataFrame) -> pd.DataFrame:
    """Events as staging stores them (``EVENT_SCHEMA`` dtypes)."""
    return pa.Table.from_pandas(events, schema=EVENT_SCHEMA, preserve_index=False).to_pandas()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return _staged(make_events(n_workspaces=5, days=30, end=D, seed=3))


@pytest.fixture(scope="module")
def features() -> dict[str, pd.DataFrame]:
    agg = daily_aggregates(make_events(n_workspaces=3, days=60, end=D, seed=4))
    return {
        "workspace_daily": build_workspace_features(agg, D),
        "user_behaviour": build_user_features(agg, D),
        "agent_daily": build_agent_features(agg, D),
    }


def _failed(report: QualityReport) -> dict[tuple[str, str | None], dict]:
    return {(r["name"], r["column"]): r for r in report.failures}


def _result(report: QualityReport, name: str, column: str | None = None) -> dict:
    return next(r for r in report.results if r["name"] == name and r["column"] == column)


def test_clean_events_pass_every_expectation(events):
    report = validate_raw_events(events, D)
    assert report.passed, report.summary()
    volume = _result(report, "volume")
    assert not volume["skipped"] and volume["observed"] == int((events["event_time"].dt.date == D).sum())
    assert {"schema_columns", "schema_type", "not_null", "credits_non_negative", "count_at_least_one", "status_known",
            "no_future_timestamps", "freshness", "volume"} == {r["name"] for r in report.results}
    assert enforce(report) is report
    assert json.loads(json.dumps(report.as_dict()))["passed"] is True


@pytest.mark.parametrize(
    ("column", "value", "name"),
    [
        ("credits", -1.5, "credits_non_negative"),
        ("workspace_id", None, "not_null"),
        ("status", "timeout", "status_known"),
        ("count", 0, "count_at_least_one"),
        ("event_time", pd.Timestamp("2026-04-02 08:00", tz="UTC"), "no_future_timestamps"),
    ],
)
def test_each_bad_value_fails_its_expectation_with_counts_and_examples(events, column, value, name):
    bad = events.copy()
    rows = [4, 40, 400]
    bad.loc[rows, column] = value
    report = validate_raw_events(bad, D)
    assert not report.passed
    failed = _failed(report)
    assert set(failed) == {(name, column)}, report.summary()
    result = failed[(name, column)]
    assert result["unexpected_count"] == 3
    assert result["unexpected_percent"] == pytest.approx(300 / len(events))
    assert [e["row"] for e in result["examples"]] == rows
    assert all(set(EVENT_SCHEMA.names) <= set(e) for e in result["examples"])


def test_schema_drift_fails_schema_and_skips_checks_of_the_missing_column(events):
    report = validate_raw_events(events.drop(columns=["credits"]), D)
    failed = _failed(report)
    assert set(failed) == {("schema_columns", None)}
    assert failed[("schema_columns", None)]["examples"] == [{"missing": ["credits"]}]
    skipped = {r["name"] for r in report.results if r["skipped"]}
    assert skipped == {"schema_type", "not_null", "credits_non_negative"}
    assert "column credits is missing" in report.summary()


def test_wrong_dtype_fails_schema_type(events):
    report = validate_raw_events(events.astype({"count": "float64"}), D)
    failed = _failed(report)
    assert set(failed) == {("schema_type", "count")}
    assert failed[("schema_type", "count")]["observed"] == "float64"


def test_volume_collapse_fails_the_volume_band(events):
    on_d = events.index[events["event_time"].dt.date == D]
    collapsed = events.drop(on_d[int(len(on_d) * 0.05):])  # keep 5% of the logical date's rows
    report = validate_raw_events(collapsed, D)
    failed = _failed(report)
    assert set(failed) == {("volume", None)}, report.summary()
    assert failed[("volume", None)]["observed"] == int(len(on_d) * 0.05)
    assert "expected" in failed[("volume", None)]["note"]


def test_volume_uses_given_history_and_skips_without_enough_days(events):
    window = events[events["event_time"] >= pd.Timestamp(D - timedelta(days=2), tz="UTC")]
    skipped = _result(validate_raw_events(window, D), "volume")
    assert skipped["skipped"] and skipped["success"] and "only 2 days of history" in skipped["note"]

    on_d = int((window["event_time"].dt.date == D).sum())
    history = pd.Series(on_d * 100, index=[D - timedelta(days=i) for i in range(1, 15)])
    report = validate_raw_events(window, D, recent_daily_rows=history)
    assert set(_failed(report)) == {("volume", None)}
    assert validate_raw_events(window, D, recent_daily_rows=history // 100).passed


def test_stale_data_fails_freshness(events):
    stale = events[events["event_time"] < pd.Timestamp(D - timedelta(days=2), tz="UTC")]
    report = validate_raw_events(stale, D)
    failed = _failed(report)
    assert ("freshness", "event_time") in failed
    assert failed[("freshness", "event_time")]["observed"] == stale["event_time"].max().isoformat()
    assert "2026-03-30T00:00:00+00:00" in failed[("freshness", "event_time")]["note"]


def test_now_before_the_end_of_the_day_moves_the_future_limit(events):
    now = datetime(2026, 3, 31, 12, 30, tzinfo=timezone.utc)
    report = validate_raw_events(events, D, now=now)
    failed = _failed(report)
    assert set(failed) == {("no_future_timestamps", "event_time")}
    in_future = int((events["event_time"] >= now).sum())
    assert failed[("no_future_timestamps", "event_time")]["unexpected_count"] == in_future


def test_empty_window_fails_freshness(events):
    report = validate_raw_events(events.iloc[:0], D)
    assert set(_failed(report)) == {("freshness", "event_time")}
    assert "no events" in report.summary()


def test_summary_and_enforce_name_the_failure_and_show_examples(events):
    bad = events.copy()
    bad.loc[7, "credits"] = -42.0
    report = validate_raw_events(bad, D)
    text = report.summary()
    assert text.startswith("Data quality FAILED: raw_events as of 2026-03-31, 1 of")
    assert "FAILED raw_events.credits_non_negative [credits]: credits >= 0" in text
    assert f"1 of {len(events):,} rows unexpected" in text
    assert "'row': 7" in text and "-42.0" in text
    with pytest.raises(QualityGateError) as err:
        enforce(report)
    assert str(err.value) == text and err.value.report is report
    details = json.loads(json.dumps(report.as_dict()))
    assert details["n_failed"] == 1 and details["results"][0]["name"] == "schema_columns"


def test_daily_row_counts_reads_partition_footers(tmp_path, events):
    for day in (D - timedelta(days=2), D - timedelta(days=1), D):
        part = events[events["event_time"].dt.date == day]
        partition_path(tmp_path, day).parent.mkdir(parents=True)
        table = pa.Table.from_pandas(part, schema=EVENT_SCHEMA, preserve_index=False)
        pq.write_table(table, partition_path(tmp_path, day))
    counts = daily_row_counts(tmp_path, D)
    assert list(counts.index) == [D - timedelta(days=2), D - timedelta(days=1)]
    assert counts.iloc[-1] == int((events["event_time"].dt.date == D - timedelta(days=1)).sum())


def test_clean_features_pass(features):
    report = validate_features(features, D)
    assert report.passed, report.summary()
    assert report.rows == {name: len(frame) for name, frame in features.items()}
    names = {r["name"] for r in report.results}
    assert names == {"not_empty", "columns_present", "type", "key_not_null", "unique_key", "null_rate", "range",
                     "column_order"}
    assert feature_bounds(FEATURE_SETS["user_behaviour"])["active_days_7"] == (0, 7)
    assert feature_bounds(FEATURE_SETS["workspace_daily"])["seasonal_strength_7"] == (0, 1)


def test_feature_out_of_range_fails_range(features):
    users = features["user_behaviour"].copy()
    users.loc[2, "active_days_7"] = 9
    users.loc[2, "active_days_28"] = 9  # keep active_days_7 <= active_days_28
    report = validate_features({"user_behaviour": users}, D)
    failed = _failed(report)
    assert set(failed) == {("range", "active_days_7")}, report.summary()
    result = failed[("range", "active_days_7")]
    assert result["dataset"] == "user_behaviour" and result["unexpected_count"] == 1
    assert result["examples"] == [{"row": 2, "workspace_id": users.loc[2, "workspace_id"],
                                   "user_id": users.loc[2, "user_id"], "active_days_7": 9}]
    assert "FAILED user_behaviour.range [active_days_7]: 0 <= active_days_7 <= 7" in report.summary()


def test_recency_beyond_tenure_fails_column_order(features):
    users = features["user_behaviour"].copy()
    users.loc[0, "recency_days"] = users.loc[0, "tenure_days"] + 1
    failed = _failed(validate_features({"user_behaviour": users}, D))
    assert set(failed) == {("column_order", "tenure_days, recency_days")}


def test_nulls_in_features_fail_null_rate(features):
    ws = features["workspace_daily"].copy()
    ws.loc[[0, 1], "credits_roll_7_mean"] = np.nan
    failed = _failed(validate_features({"workspace_daily": ws}, D))
    assert set(failed) == {("null_rate", "credits_roll_7_mean")}
    assert failed[("null_rate", "credits_roll_7_mean")]["unexpected_count"] == 2


def test_duplicate_and_null_entity_keys_fail(features):
    agents = features["agent_daily"]
    dup = pd.concat([agents, agents.iloc[[0]]], ignore_index=True)
    failed = _failed(validate_features({"agent_daily": dup}, D))
    assert set(failed) == {("unique_key", "workspace_id, agent_id")}
    assert failed[("unique_key", "workspace_id, agent_id")]["unexpected_count"] == 2

    ws = features["workspace_daily"].copy()
    ws.loc[1, "workspace_id"] = ws.loc[0, "workspace_id"]
    assert set(_failed(validate_features({"workspace_daily": ws}, D))) == {("unique_key", "workspace_id")}
    ws.loc[1, "workspace_id"] = None
    assert set(_failed(validate_features({"workspace_daily": ws}, D))) == {("key_not_null", "workspace_id")}


def test_empty_user_set_is_one_clear_failure(features):
    empty = build_user_features(daily_aggregates(_staged(make_events(1, 5)).iloc[:0]), D)
    report = validate_features({"workspace_daily": features["workspace_daily"], "user_behaviour": empty}, D)
    assert set(_failed(report)) == {("not_empty", None)}
    text = report.summary()
    assert "FAILED user_behaviour.not_empty: at least one user" in text
    assert "user_behaviour has no rows as of 2026-03-31" in text
    with pytest.raises(QualityGateError, match="user_behaviour has no rows"):
        enforce(report)


def test_missing_declared_column_fails_columns_present(features):
    report = validate_features({"agent_daily": features["agent_daily"].drop(columns=["error_rate_t"])}, D)
    failed = _failed(report)
    assert set(failed) == {("columns_present", None)}
    assert failed[("columns_present", None)]["examples"] == [{"missing": ["error_rate_t"]}]


def test_unknown_feature_set_is_rejected(features):
    with pytest.raises(ValueError, match="Unknown feature sets"):
        validate_features({"workspace": features["workspace_daily"]}, D)
