"""Peak usage end to end on a small generated platform: the hourly feature set, the kind through the nightly
steps, its rows, views and alerts, an idempotent re-run, ``pae capacity`` and ``pae peaks``."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.ingest.load import load_events
from pipelines.simulator.generate import generate_platform

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, engine, db_url):
    from tests.conftest import ANALYTICS_TABLES

    with engine.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in ANALYTICS_TABLES)))
        conn.execute(sa.text("truncate analytics.capacity_limits, analytics.workspace_time_zones"))
    root = tmp_path_factory.mktemp("peaks")
    generate_platform(5, 100, seed=4, out_dir=root / "gen", end_date=END)
    load_events(engine, root / "gen" / "events", root / "rejects")
    settings = Settings(database_url=db_url, data_dir=root / "pae", shards=2, peak_paths=100)
    from pipelines.nightly import run_nightly

    published = run_nightly(END, settings, kinds=["peak_usage"])
    return settings, published, root


def _rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("select * from analytics.predictions where prediction_type = 'peak_usage'"
                                    " order by workspace_id, target_metric, granularity, prediction_date,"
                                    " prediction_hour")).all()


def test_hourly_feature_set_and_time_zones(platform):
    from pipelines.features.sets import WORKSPACE_HOURLY
    from pipelines.features.store import read_offline

    settings, _, root = platform
    feats = read_offline(settings.offline_store_dir, WORKSPACE_HOURLY, END)
    assert len(feats) == 5 and feats["time_zone"].notna().all()
    assert (feats["calls_hour_max_28"] >= feats["calls_hour_mean_28"]).all()
    truth = pd.read_parquet(root / "gen" / "ground_truth" / "workspaces.parquet")
    got = feats.set_index("workspace_id")["utc_offset_hours"]
    off = truth.set_index("workspace_id")["utc_offset_hours"].reindex(got.index)
    assert ((got - off).abs() <= 1.0).mean() >= 0.8  # inferred from the daily rhythm (half-hour zones: +-0.5)


def test_rows_views_and_idempotent_rerun(platform, engine):
    settings, published, _ = platform
    assert published[0].status == "success" and published[0].rows > 0
    first = _rows(engine)
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text(
            "select target_metric, count(*) from analytics.predictions where prediction_type = 'peak_usage'"
            " group by 1")).all())
        per_ws = conn.execute(sa.text(
            "select count(*) from analytics.predictions where prediction_type = 'peak_usage'"
            " and target_metric = 'calls' and granularity = 'hour' group by workspace_id")).scalars().all()
        bad = conn.execute(sa.text(
            "select count(*) from analytics.predictions where prediction_type = 'peak_usage'"
            " and not (confidence_lower <= predicted_value and predicted_value <= confidence_upper)")).scalar()
        probs = conn.execute(sa.text(
            "select max(s) from (select sum(predicted_value) as s from analytics.predictions"
            " where target_metric = 'calls_peak_hour_probability' group by workspace_id, prediction_date) t")).scalar()
    assert set(per_ws) == {168} and bad == 0 and float(probs) <= 1.0 + 1e-6
    assert counts["calls_peak"] == counts["credits_peak"] == 5 * 7 and counts["calls_week_peak"] == 5
    assert counts["calls_80"] == counts["calls"]
    reader = sa.create_engine(sa.engine.make_url(settings.database_url).set(username="pae_reader"))
    with reader.connect() as conn:
        plan = pd.DataFrame(conn.execute(sa.text("select * from analytics.v_capacity_plan")).mappings().all())
        alerts = pd.DataFrame(conn.execute(sa.text("select * from analytics.v_capacity_alerts")).mappings().all())
    reader.dispose()
    assert len(plan) == 5 * 7 * 2 and plan["peak_hour_utc"].between(0, 23).all()
    assert (plan["capacity_need"] >= plan["peak_upper"].astype(float) * 1.2 - 1e-3).all()
    assert set(plan["limit_source"].dropna()) == {"max_hour_28d"} and len(alerts) == 5 * 168 * 2
    assert alerts["hours_ahead"].min() == 0 and alerts["hours_ahead"].max() == 167

    from pipelines.nightly import run_nightly

    run_nightly(END, settings, kinds=["peak_usage"])
    assert _rows(engine) == first  # same date again: identical rows, ids included


def test_capacity_limits_drive_alerts(platform, engine):
    from pipelines.peak_usage.capacity import CapacityError, clear_capacity, set_capacity

    with engine.connect() as conn:
        ws = conn.execute(sa.text("select external_id from analytics.entities where entity_type = 'workspace'"
                                  " order by 1 limit 1")).scalar_one()
    set_capacity(engine, ws, {"calls": 1e-3}, time_zone="Europe/Paris")
    with engine.connect() as conn:
        src, n_alert = conn.execute(sa.text(
            "select max(limit_source), count(*) filter (where alert) from analytics.v_capacity_alerts"
            " where workspace_external_id = :w and target_metric = 'calls'"), {"w": ws}).one()
    assert src == "capacity_limits" and n_alert > 0
    with pytest.raises(CapacityError, match="unknown workspace"):
        set_capacity(engine, "nope", {"calls": 10})
    with pytest.raises(CapacityError, match="time zone"):
        set_capacity(engine, ws, {}, time_zone="Mars/Olympus")
    assert clear_capacity(engine, ws, time_zone=True) == 2


def test_pae_peaks_writes_exactly_the_issue_columns(tmp_path):
    from pipelines.cli import main

    rng = pd.date_range("2025-01-06", periods=21 * 24, freq="h")
    hourly = pd.concat([pd.DataFrame({"unique_id": uid, "ds": rng, "y": ((rng.hour - shift) % 24 == 11) * 50.0 + 1})
                        for uid, shift in (("a", 0), ("b", 3))])
    hourly = pd.concat([hourly, pd.DataFrame({"unique_id": "short", "ds": rng[:100], "y": 1.0})])
    src, dst = tmp_path / "hourly.csv", tmp_path / "peaks.csv"
    hourly.to_csv(src, index=False)
    assert main(["peaks", "--input", str(src), "--horizon-days", "7", "--level", "95", "--output", str(dst)]) == 0
    out = pd.read_csv(dst)
    assert list(out.columns) == ["unique_id", "date", "peak_hour", "peak_value", "peak_lower", "peak_upper", "capacity"]
    assert len(out) == 3 * 7
    assert set(out[out["unique_id"] == "a"]["peak_hour"]) == {11} and set(out[out["unique_id"] == "b"]["peak_hour"]) == {14}
    assert main(["peaks", "--input", str(src), "--horizon-days", "0", "--output", str(dst)]) == 2
