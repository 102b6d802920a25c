from datetime import datetime, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from core.ids import entity_uuid
from pipelines.ingest.load import EventSchemaError, load_events
from tests.conftest import make_events

NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)


def _count(engine, table="usage_events") -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from analytics.{table}")).scalar_one()


def test_load_csv_is_idempotent_and_maps_ids(clean_db, tmp_path):
    events = make_events(2, 10)
    path = tmp_path / "events.csv"
    events.to_csv(path, index=False)
    first = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert first.rows_inserted == len(events) and first.rows_rejected == 0
    second = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert second.rows_inserted == 0 and second.rows_already_loaded == len(events)
    assert _count(clean_db) == len(events)
    with clean_db.connect() as conn:
        ws = dict(conn.execute(sa.text(
            "select external_id, entity_id from analytics.entities where entity_type = 'workspace'")).all())
    assert ws == {"ws0": entity_uuid("workspace", "ws0"), "ws1": entity_uuid("workspace", "ws1")}


def test_entities_keep_first_seen_and_first_workspace_across_files(clean_db, tmp_path):
    """A user seen again in a later file, earlier and in another workspace: first_seen_at moves back, the first
    recorded workspace stays. Ids with commas, quotes and a newline round-trip through the staging copy."""
    odd = 'u "odd", one\nline'
    def frame(t, ws, user, agent=None):
        return pd.DataFrame([{"event_time": pd.Timestamp(t, tz="UTC"), "workspace_id": ws, "user_id": user,
                              "agent_id": agent, "feature": "chat", "credits": 1.0, "status": "ok", "count": 1}])
    (tmp_path / "a").mkdir()
    pd.concat([frame("2026-03-10T10:00", "ws,a", odd), frame("2026-03-10T11:00", "ws,a", None, "agent 1")]
              ).to_parquet(tmp_path / "a" / "1.parquet")
    frame("2026-03-01T09:00", "ws-b", odd).to_parquet(tmp_path / "a" / "2.parquet")
    s = load_events(clean_db, tmp_path / "a", tmp_path / "rejects", now=NOW)
    assert s.rows_inserted == 3 and set(s.seconds) >= {"read", "validate", "stage", "insert", "entities"}
    with clean_db.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(sa.text(
            "select entity_type, entity_id, external_id, workspace_id, first_seen_at from analytics.entities"))}
    assert set(rows) == {"ws,a", "ws-b", odd, "agent 1"}
    user = rows[odd]
    assert user.entity_type == "user" and user.entity_id == entity_uuid("user", odd)
    assert user.workspace_id == entity_uuid("workspace", "ws,a")  # the first workspace recorded stays
    assert user.first_seen_at == pd.Timestamp("2026-03-01T09:00", tz="UTC")  # the earliest event, from file 2
    assert rows["agent 1"].workspace_id == entity_uuid("workspace", "ws,a")
    assert rows["ws-b"].workspace_id is None and rows["ws-b"].first_seen_at == pd.Timestamp("2026-03-01T09:00", tz="UTC")


def test_identical_rows_in_a_file_are_kept_as_separate_events(clean_db, tmp_path):
    row = make_events(1, 1).iloc[[0]]
    path = tmp_path / "dups.parquet"
    pd.concat([row, row, row]).to_parquet(path)
    assert load_events(clean_db, path, tmp_path, now=NOW).rows_inserted == 3
    assert load_events(clean_db, path, tmp_path, now=NOW).rows_inserted == 0
    assert _count(clean_db) == 3


def test_bad_rows_are_reported_with_line_and_reason_and_not_loaded(clean_db, tmp_path):
    good = make_events(1, 2).astype(str).replace({"None": ""})
    bad = pd.DataFrame([
        {**good.iloc[0].to_dict(), "credits": "-5"},
        {**good.iloc[0].to_dict(), "status": "maybe"},
        {**good.iloc[0].to_dict(), "event_time": "not a time"},
        {**good.iloc[0].to_dict(), "event_time": "2030-01-01T00:00:00Z"},
        {**good.iloc[0].to_dict(), "workspace_id": ""},
        {**good.iloc[0].to_dict(), "credits": "abc", "count": "0"},
    ])
    frame = pd.concat([good, bad], ignore_index=True)
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert s.rows_rejected == 6 and s.rows_inserted == len(good)
    report = pd.read_csv(s.reject_report)
    assert report["line"].tolist() == [len(good) + 2 + i for i in range(6)]  # header is line 1
    reasons = report["reason"].tolist()
    assert "credits is negative" in reasons[0]
    assert "status is not one of" in reasons[1]
    assert "not a timestamp" in reasons[2]
    assert "in the future" in reasons[3]
    assert "workspace_id is empty" in reasons[4]
    assert "credits is not a number" in reasons[5] and "count is not an integer" in reasons[5]
    assert _count(clean_db) == len(good)


def test_missing_column_is_a_clear_error_and_loads_nothing(clean_db, tmp_path):
    path = tmp_path / "drift.csv"
    make_events(1, 2).drop(columns=["status"]).to_csv(path, index=False)
    with pytest.raises(EventSchemaError, match=r"missing column\(s\) \['status'\]"):
        load_events(clean_db, path, tmp_path, now=NOW)
    assert _count(clean_db) == 0


def test_failed_load_leaves_nothing_half_loaded(clean_db, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    make_events(1, 3).to_csv(folder / "a.csv", index=False)
    (folder / "b.csv").write_text("event_time,workspace_id\n2026-01-01,ws\n")  # schema drift in the 2nd file
    with pytest.raises(EventSchemaError):
        load_events(clean_db, folder, tmp_path, now=NOW)
    assert _count(clean_db) == 0 and _count(clean_db, "entities") == 0


def test_extra_columns_are_carried_in_extra(clean_db, tmp_path):
    events = make_events(1, 1).assign(region="eu")
    path = tmp_path / "extra.parquet"
    events.to_parquet(path)
    s = load_events(clean_db, path, tmp_path, now=NOW)
    assert s.extra_columns == ["region"]
    with clean_db.connect() as conn:
        regions = conn.execute(sa.text("select distinct extra->>'region' from analytics.usage_events")).scalars().all()
    assert regions == ["eu"]
