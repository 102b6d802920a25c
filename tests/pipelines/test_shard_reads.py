"""A shard task asks the aggregate readers for its own shard only (they filter file by file), and gets exactly the
rows it got when it read the whole platform and filtered (that read grew with the platform: 4.2 GB per consumption
shard at 10,000 workspaces, ``bench/train_shard.py``)."""
from datetime import date, datetime, timezone

import pandas as pd
import pytest

from core.settings import Settings
from core.shards import in_shard
from pipelines.consumption.forecast import load_shard_series
from pipelines.features.builders import daily_series
from pipelines.features.store import build_feature_store, load_daily_aggregates
from pipelines.growth.project import user_days_for
from pipelines.ingest.extract import extract
from pipelines.ingest.load import load_events
from tests.conftest import make_events

END = date(2026, 3, 31)
NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)
N_SHARDS = 3


@pytest.fixture
def store(tmp_path, clean_db):
    events = make_events(8, 120, seed=5)
    events.to_csv(tmp_path / "e.csv", index=False)
    load_events(clean_db, tmp_path / "e.csv", tmp_path, now=NOW)
    settings = Settings(data_dir=tmp_path / "pae")
    extract(clean_db, END, settings.staging_dir)
    build_feature_store(clean_db, settings.staging_dir, settings.offline_store_dir, END)
    return settings


@pytest.fixture
def shard_asked(monkeypatch) -> list:
    """The ``shard`` argument of every aggregate read the shard code makes (None: the whole platform)."""
    import pipelines.consumption.forecast as consumption
    import pipelines.features.store as feature_store
    import pipelines.peak_usage.forecast as peak_usage

    asked: list = []
    for module, name in ((consumption, "load_daily_aggregates"), (feature_store, "load_daily_aggregates"),
                         (peak_usage, "load_hourly_aggregates")):
        def spy(*args, _real=getattr(module, name), **kwargs):
            asked.append(kwargs.get("shard"))
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    return asked


def _platform_series(settings: Settings, shard: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The consumption series as read before: every workspace, then the shard's mask."""
    agg = load_daily_aggregates(settings.offline_store_dir, END,
                                since=END - pd.Timedelta(days=settings.forecast_history_days - 1).to_pytimedelta())
    totals = daily_series(agg, END)
    totals = totals[in_shard(totals["unique_id"], shard, N_SHARDS)]
    bottom = daily_series(agg, END, by_feature=True)
    bottom = bottom[bottom["unique_id"].str.split("|", n=1).str[0].isin(set(totals["unique_id"]))]
    return totals.reset_index(drop=True), bottom.reset_index(drop=True)


def test_consumption_shard_reads_its_workspaces_only_and_the_same_series(store, shard_asked):
    seen = set()
    for shard in range(N_SHARDS):
        totals, bottom = load_shard_series(store, END, shard, N_SHARDS)
        assert shard_asked == [(shard, N_SHARDS)]
        shard_asked.clear()
        want_totals, want_bottom = _platform_series(store, shard)
        pd.testing.assert_frame_equal(totals.reset_index(drop=True), want_totals)
        pd.testing.assert_frame_equal(bottom.reset_index(drop=True), want_bottom)
        assert in_shard(totals["unique_id"], shard, N_SHARDS).all()
        seen |= set(totals["unique_id"])
    assert len(seen) == 8  # the shards cover every workspace


def test_growth_shard_reads_its_users_only_and_the_same_rows(store, shard_asked):
    whole = user_days_for(store.offline_store_dir, END, 28)
    assert not whole.empty
    parts = []
    for shard in range(N_SHARDS):
        shard_asked.clear()
        part = user_days_for(store.offline_store_dir, END, 28, (shard, N_SHARDS))
        assert shard_asked == [(shard, N_SHARDS)]
        want = whole[in_shard(whole["workspace_id"], shard, N_SHARDS)]
        keys = ["workspace_id", "user_id", "day"]
        pd.testing.assert_frame_equal(part.sort_values(keys, ignore_index=True), want.sort_values(keys, ignore_index=True))
        parts.append(part)
    assert sum(map(len, parts)) == len(whole)


def test_peak_usage_shard_reads_its_hours_only_and_the_same_series(store, shard_asked):
    from pipelines.features.hourly import hourly_series, load_hourly_aggregates
    from pipelines.peak_usage.forecast import PEAK_METRICS, history_days, load_shard_hours

    since = END - pd.Timedelta(days=history_days(store)).to_pytimedelta()
    whole = load_hourly_aggregates(store.offline_store_dir, END, since)
    assert not whole.empty
    seen = set()
    for shard in range(N_SHARDS):
        data = load_shard_hours(store, END, shard, N_SHARDS)
        assert shard_asked == [(shard, N_SHARDS)]
        shard_asked.clear()
        mine = whole[in_shard(whole["workspace_id"], shard, N_SHARDS)]
        want = hourly_series(mine, END, PEAK_METRICS, since=pd.Timestamp(since))
        if data is None:
            assert want.empty
            continue
        pd.testing.assert_frame_equal(data["utc"].reset_index(drop=True), want.reset_index(drop=True))
        seen |= set(data["utc"]["unique_id"])
    assert seen == set(whole["workspace_id"])
