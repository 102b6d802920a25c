"""Tests of the synthetic platform generator: determinism, the event contract, ground truth, realism."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.simulator import generate
from pipelines.simulator.generate import generate_platform
from pipelines.simulator.realism import series_realism_stats

END = date(2026, 11, 24)
EVENT_COLUMNS = ["event_time", "workspace_id", "user_id", "agent_id", "feature", "credits", "status", "count"]


def read_events(out) -> pd.DataFrame:
    return pd.read_parquet(out / "events")


def read_truth(out, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / "ground_truth" / f"{name}.parquet")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    summary = generate_platform(8, 120, seed=3, out_dir=out, end_date=END)
    return summary, read_events(out)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    out = tmp_path_factory.mktemp("medium")
    summary = generate_platform(30, 365, seed=11, out_dir=out, end_date=END)
    return summary, read_events(out)


def local_dates(events: pd.DataFrame, workspaces: pd.DataFrame) -> pd.Series:
    offset = events["workspace_id"].map(workspaces.set_index("workspace_id")["utc_offset_hours"])
    local = events["event_time"].dt.tz_localize(None) + pd.to_timedelta(offset, unit="h")
    return local.dt.normalize()


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small):
    summary, events = small
    again = generate_platform(8, 120, seed=3, out_dir=tmp_path / "again", end_date=END)
    assert [p.read_bytes() for p in again.event_files] == [p.read_bytes() for p in summary.event_files]
    for name in generate.TRUTH_SCHEMAS:
        pd.testing.assert_frame_equal(read_truth(tmp_path / "again", name), read_truth(summary.out_dir, name))
    other = generate_platform(8, 120, seed=4, out_dir=tmp_path / "other", end_date=END)
    assert not read_events(tmp_path / "other").equals(events)
    assert other.n_event_rows != summary.n_event_rows


def test_output_does_not_depend_on_chunking(tmp_path, small, monkeypatch):
    _, events = small
    monkeypatch.setattr(generate, "CHUNK_WORKSPACES", 3)
    summary = generate_platform(8, 120, seed=3, out_dir=tmp_path, end_date=END)
    assert len(summary.event_files) == 3
    pd.testing.assert_frame_equal(read_events(tmp_path), events)


def test_event_contract(small):
    summary, events = small
    assert list(events.columns) == EVENT_COLUMNS
    assert str(events["event_time"].dtype) == "datetime64[us, UTC]"
    assert events["credits"].dtype == np.float64 and events["count"].dtype == np.int32
    assert (events["credits"] >= 0).all() and (events["count"] >= 1).all()
    assert set(events["status"]) == {"ok", "error"}
    assert set(events["feature"]) <= set(generate.FEATURES)
    assert events["workspace_id"].str.fullmatch(r"ws-\d{4}").all()
    assert events["user_id"].dropna().str.fullmatch(r"u-\d{6}").all()
    assert events["agent_id"].dropna().str.fullmatch(r"ag-\d{5}").all()
    assert not (events["user_id"].notna() & events["agent_id"].notna()).any()
    window_start = pd.Timestamp(summary.start_date, tz="UTC")
    assert events["event_time"].min() >= window_start
    assert events["event_time"].max() <= pd.Timestamp(END, tz="UTC") + pd.Timedelta("23:59:59.999999")
    assert summary.start_date == END - timedelta(days=119)
    assert summary.n_event_rows == len(events)


def test_summary_and_manifest_agree(small):
    summary, events = small
    manifest = json.loads((summary.out_dir / "manifest.json").read_text())
    assert manifest["counts"]["event_rows"] == len(events)
    assert manifest["counts"]["users"] == summary.n_users == len(read_truth(summary.out_dir, "users"))
    assert manifest["counts"]["agents"] == summary.n_agents == len(read_truth(summary.out_dir, "agents"))
    assert manifest["arguments"]["seed"] == 3
    assert [summary.out_dir / p for p in manifest["event_files"]] == summary.event_files


def test_event_ids_exist_in_ground_truth(small):
    summary, events = small
    users = read_truth(summary.out_dir, "users")
    agents = read_truth(summary.out_dir, "agents")
    user_ws = events.dropna(subset=["user_id"])[["user_id", "workspace_id"]].drop_duplicates()
    merged = user_ws.merge(users[["user_id", "workspace_id"]], on="user_id", how="left", suffixes=("", "_truth"))
    assert (merged["workspace_id"] == merged["workspace_id_truth"]).all()
    assert set(events["agent_id"].dropna()) <= set(agents["agent_id"])
    assert set(events["workspace_id"]) <= set(read_truth(summary.out_dir, "workspaces")["workspace_id"])


def test_users_are_silent_outside_their_lifetime(medium):
    summary, events = medium
    users = read_truth(summary.out_dir, "users")
    workspaces = read_truth(summary.out_dir, "workspaces")
    ev = events.dropna(subset=["user_id"]).copy()
    ev["local_day"] = local_dates(ev, workspaces)
    ev = ev.merge(users, on=["user_id", "workspace_id"])
    for col in ("signup_date", "churn_date", "reactivation_date"):
        ev[col] = pd.to_datetime(ev[col])
    assert (ev["local_day"] >= ev["signup_date"]).all()
    churned = ev["churn_date"].notna()
    gone = churned & ev["reactivation_date"].isna()
    assert gone.any(), "the medium platform should have churned users"
    assert (ev.loc[gone, "local_day"] < ev.loc[gone, "churn_date"]).all()
    utc_day = ev["event_time"].dt.tz_localize(None)
    assert (utc_day[gone] < ev.loc[gone, "churn_date"] + pd.Timedelta(days=1)).all()
    away = churned & ev["reactivation_date"].notna()
    in_gap = (ev["local_day"] >= ev["churn_date"]) & (ev["local_day"] < ev["reactivation_date"])
    assert not (away & in_gap).any()
    ended = ev["workspace_id"].map(workspaces.set_index("workspace_id")["ended_date"])
    assert (ev["local_day"] < pd.to_datetime(ended)).loc[ended.notna()].all()
    assert set(users["churn_kind"].dropna()) == {"fade", "sudden"}
    assert users["churn_kind"].notna().eq(users["churn_date"].notna()).all()


def test_agents_have_errors_and_incidents_raise_them(medium):
    summary, events = medium
    agent_rows = events.dropna(subset=["agent_id"])
    assert (agent_rows["status"] == "error").any()
    assert (events.dropna(subset=["user_id"])["status"] == "error").any()
    incidents = read_truth(summary.out_dir, "incidents")
    agents = read_truth(summary.out_dir, "agents")
    assert len(incidents) > 0
    assert agents["base_error_rate"].between(0.005, 0.05).all()
    assert incidents["peak_error_rate"].between(0.2, 0.6).all()
    ramp = (pd.to_datetime(incidents["peak_date"]) - pd.to_datetime(incidents["start_date"])).dt.days
    assert ramp.between(3, 10).all()
    # around the peaks the observed error share is far above the agents' base rates
    workspaces = read_truth(summary.out_dir, "workspaces")
    agent_rows = agent_rows.assign(local_day=local_dates(agent_rows, workspaces))
    peaks = incidents.assign(local_day=pd.to_datetime(incidents["peak_date"]))[["agent_id", "local_day"]]
    at_peak = agent_rows.merge(peaks, on=["agent_id", "local_day"])
    share = at_peak.loc[at_peak["status"] == "error", "count"].sum() / at_peak["count"].sum()
    assert share > 0.15


def test_workspaces_are_diverse(medium):
    summary, events = medium
    workspaces = read_truth(summary.out_dir, "workspaces")
    assert workspaces["n_users"].min() <= 10 and workspaces["n_users"].max() >= 100
    assert workspaces["country"].nunique() >= 4
    assert workspaces["trend_kind"].nunique() >= 3
    hours = events["event_time"].dt.hour.value_counts()
    assert len(hours) == 24


def test_realism_stats_have_a_spread(medium):
    summary, events = medium
    daily = (events.assign(ds=events["event_time"].dt.tz_localize(None).dt.floor("D"))
             .groupby(["workspace_id", "ds"])["credits"].sum())
    days = pd.date_range(summary.start_date, summary.end_date, freq="D")
    frames = []
    for uid, y in daily.groupby(level=0):
        y = y.droplevel(0).reindex(days, fill_value=0.0)
        y = y[y.index >= y.ne(0).idxmax()]
        frames.append(pd.DataFrame({"unique_id": uid, "ds": y.index, "y": y.to_numpy()}))
    stats = series_realism_stats(pd.concat(frames, ignore_index=True))
    assert stats["cv"].min() < 0.3 and stats["cv"].max() > 1.0
    assert (stats["zero_share"] > 0.2).any()
    assert stats["seasonal_strength"].median() > 0.3
    assert stats["acf7"].median() > 0.2


def test_series_realism_stats_on_known_series():
    ds = pd.date_range("2025-01-01", periods=140, freq="D")
    rng = np.random.default_rng(0)
    weekly = 10 + 5 * (ds.dayofweek < 5) + rng.normal(0, 0.1, len(ds))
    sparse = np.where(rng.random(len(ds)) < 0.4, 0.0, 1.0)
    frame = pd.concat([
        pd.DataFrame({"unique_id": "weekly", "ds": ds, "y": weekly}),
        pd.DataFrame({"unique_id": "sparse", "ds": ds, "y": sparse}),
        pd.DataFrame({"unique_id": "short", "ds": ds[:20], "y": 1.0}),
    ])
    stats = series_realism_stats(frame).set_index("unique_id")
    assert list(stats.columns) == ["cv", "seasonal_strength", "trend_strength", "acf7", "zero_share"]
    assert stats.loc["weekly", "seasonal_strength"] > 0.9 and stats.loc["weekly", "acf7"] > 0.9
    assert stats.loc["sparse", "seasonal_strength"] < 0.5
    assert stats.loc["sparse", "zero_share"] == pytest.approx(np.mean(sparse == 0))
    assert stats.loc["short"].isna().all()


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="must be positive"):
        generate_platform(0, 10, seed=1, out_dir=tmp_path)
