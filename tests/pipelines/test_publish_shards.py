"""Publishing in workspace shards (``pipelines.nightly.publish_parts_step`` / ``publish_part_step`` /
``publish_step``): the same rows as publishing each set at once, idempotent, and complete only with every shard."""
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from core.contracts import RunStatus
from core.shards import shard_of
from pipelines.nightly import publish_part_step, publish_parts_step, publish_step
from pipelines.results import KindResult

AS_OF = date(2026, 3, 31)
WORKSPACES = [f"ws-{i}" for i in range(9)]
# the columns a re-publish must leave equal (ids and created_at included: the upsert touches changed rows only)
TABLES = {"predictions": "workspace_id, dimension, prediction_date",
          "churn_predictions": "workspace_id, user_id",
          "prediction_snapshots": "workspace_id, dimension, prediction_date"}


@pytest.fixture
def db(clean_db):
    """``clean_db`` with the snapshots emptied too (other tests' nights leave theirs in the session database)."""
    with clean_db.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in TABLES)))
    return clean_db


def _forecast(shift: float = 0.0) -> pd.DataFrame:
    rows = [{"workspace_id": ws, "target_metric": "credits", "dimension": dim,
             "prediction_date": AS_OF + timedelta(days=i), "predicted_value": 10.0 * i + shift,
             "confidence_lower": 10.0 * i + shift - 1, "confidence_upper": 10.0 * i + shift + 1,
             "confidence_level": 0.95, "model_version": "1"}
            for ws in WORKSPACES for dim in ("total", "chat") for i in (1, 7, 14)]
    return pd.DataFrame(rows)


def _churn(workspaces=WORKSPACES) -> pd.DataFrame:
    return pd.DataFrame([{"workspace_id": ws, "user_id": f"{ws}-u{j}", "churn_probability": 0.1 * (j + 1),
                          "risk_score": 10.0 * (j + 1), "risk_factors": [{"feature": "recency_days"}],
                          "recommended_actions": [{"id": "reengage"}], "days_until_churn": 10 + j,
                          "model_version": "2"} for ws in workspaces for j in range(3)])


def _results(settings, forecast: pd.DataFrame, churn: pd.DataFrame) -> list[KindResult]:
    folder = settings.data_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    forecast.to_parquet(folder / "consumption.parquet")
    churn.to_parquet(folder / "churn.parquet")
    return [KindResult(kind="consumption", status=RunStatus.SUCCESS, publish_to="predictions",
                       prediction_type="credit_consumption", frame_path=str(folder / "consumption.parquet")),
            KindResult(kind="churn", status=RunStatus.SUCCESS, publish_to="churn_predictions",
                       frame_path=str(folder / "churn.parquet")),
            KindResult(kind="growth", status=RunStatus.INSUFFICIENT_DATA, reason="too little history")]


def _tables(engine) -> dict:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"select * from analytics.{t} order by {order}")).all()
                for t, order in TABLES.items()}


def _values(tables: dict) -> dict:
    """The rows without their generated ids and timestamps (two databases' ids differ)."""
    skip = {"id", "created_at", "snapshot_at"}
    with_keys = {}
    for t, rows in tables.items():
        with_keys[t] = sorted(tuple(v for k, v in r._mapping.items() if k not in skip) for r in rows)
    return with_keys


def _publish(settings, results, shards: int) -> list:
    s = settings.model_copy(update={"shards": shards})
    parts = [publish_part_step(AS_OF.isoformat(), p, s) for p in publish_parts_step(results, s)]
    assert len(parts) == 2 * shards  # one per publishable kind and shard; the skipped kind has none
    return publish_step(AS_OF.isoformat(), results, s, parts=parts)


def test_sharded_publish_equals_publishing_each_set_at_once(db, settings):
    results = _results(settings, _forecast(), _churn())
    assert len({shard_of(w, 4) for w in WORKSPACES}) > 1  # the shards really split these workspaces
    _publish(settings, results, 1)
    whole = _values(_tables(db))
    assert {t: len(v) for t, v in whole.items()} == {"predictions": 54, "churn_predictions": 27,
                                                     "prediction_snapshots": 27}
    with db.begin() as conn:
        conn.execute(sa.text("truncate " + ", ".join(f"analytics.{t}" for t in TABLES)))
    published = _publish(settings, results, 4)
    assert _values(_tables(db)) == whole
    by_kind = {p.kind: p for p in published}
    assert (by_kind["consumption"].rows, by_kind["churn"].rows) == (54, 27)
    assert by_kind["growth"].status == RunStatus.INSUFFICIENT_DATA and by_kind["growth"].rows == 0
    first = _tables(db)
    again = {p.kind: p for p in _publish(settings, results, 4)}  # a re-run: nothing changes, ids included
    assert _tables(db) == first
    assert again["consumption"].changed == 0 and again["churn"].changed == 0


def test_sharded_churn_drops_workspaces_no_longer_scored(db, settings):
    _publish(settings, _results(settings, _forecast(), _churn()), 3)
    gone = WORKSPACES[:2]
    published = {p.kind: p for p in _publish(settings, _results(settings, _forecast(shift=1.0),
                                                                 _churn(WORKSPACES[2:])), 3)}
    rows = _tables(db)
    assert len(rows["churn_predictions"]) == 21 and published["churn"].deleted_stale == 6
    assert published["consumption"].changed == 54  # every forecast value moved by 1.0
    from pipelines.publish import workspace_uuids

    gone_ids = set(workspace_uuids(gone))
    assert not {str(r.workspace_id) for r in rows["churn_predictions"]} & gone_ids


def test_publish_completes_only_with_every_shard(db, settings):
    results = _results(settings, _forecast(), _churn())
    s = settings.model_copy(update={"shards": 3})
    parts = [publish_part_step(AS_OF.isoformat(), p, s) for p in publish_parts_step(results, s)]
    with pytest.raises(RuntimeError, match="consumption: 2 published shard"):
        publish_step(AS_OF.isoformat(), results, s, parts=parts[1:])


def test_empty_shards_publish_nothing_and_do_not_fail(db, settings):
    one = [w for w in WORKSPACES if shard_of(w, 8) == shard_of(WORKSPACES[0], 8)]
    results = _results(settings, _forecast().query("workspace_id in @one"), _churn(one))
    published = _publish(settings, results, 8)  # these workspaces all fall in one shard: the other 7 are empty
    assert {p.kind: p.rows for p in published} == {"consumption": 6 * len(one), "churn": 3 * len(one), "growth": 0}


def test_a_set_in_chunks_equals_the_set_at_once(db):
    """A shard task stages its rows chunk by chunk (``core.storage.iter_parquet``): the same rows as one frame;
    a key repeated in two chunks is refused like one repeated in a frame, and nothing is published."""
    from pipelines.publish import publish_predictions

    frame = _forecast()
    with db.begin() as conn:
        publish_predictions(conn, frame, "credit_consumption", AS_OF)
    whole = _values(_tables(db))
    with db.begin() as conn:
        conn.execute(sa.text("truncate analytics.predictions"))
    with db.begin() as conn:
        stats = publish_predictions(conn, (frame.iloc[i:i + 10] for i in range(0, len(frame), 10)),
                                    "credit_consumption", AS_OF)
    assert stats["rows"] == len(frame) and _values(_tables(db)) == whole
    with pytest.raises(ValueError, match="duplicate keys"):
        with db.begin() as conn:
            publish_predictions(conn, iter([frame.assign(predicted_value=1.0), frame.iloc[:1]]),
                                "credit_consumption", AS_OF)
    assert _values(_tables(db)) == whole  # rolled back


def test_iter_parquet_reads_a_filtered_part_in_bounded_chunks(tmp_path):
    import pyarrow.compute as pc

    from core.storage import iter_parquet

    frame = _forecast()
    frame.to_parquet(tmp_path / "f.parquet", row_group_size=16)
    chunks = list(iter_parquet(tmp_path / "f.parquet", pc.field("workspace_id").isin(["ws-1", "ws-4"]), batch_rows=5))
    assert chunks and max(c.num_rows for c in chunks) <= 5
    got = pd.concat([c.to_pandas() for c in chunks], ignore_index=True)
    want = frame[frame["workspace_id"].isin(["ws-1", "ws-4"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
