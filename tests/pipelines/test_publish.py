from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.publish import publish_churn_scores, publish_predictions

AS_OF = date(2026, 3, 31)


def _forecast(h: int = 5, shift: float = 0.0, dims=("total", "chat")) -> pd.DataFrame:
    rows = []
    for ws in ("ws-a", "ws-b"):
        for dim in dims:
            for i in range(1, h + 1):
                v = 10.0 * i + shift
                rows.append({"workspace_id": ws, "target_metric": "credits", "dimension": dim,
                             "prediction_date": AS_OF + timedelta(days=i), "predicted_value": v,
                             "confidence_lower": v - 1, "confidence_upper": v + 1, "confidence_level": 0.95,
                             "model_version": "1"})
    return pd.DataFrame(rows)


def _rows(engine, table="predictions"):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select * from analytics.{table} order by id")).all()


def test_rerun_leaves_identical_rows(clean_db):
    for _ in range(2):
        with clean_db.begin() as conn:
            publish_predictions(conn, _forecast(), "credit_consumption", AS_OF)
    first = _rows(clean_db)
    with clean_db.begin() as conn:
        stats = publish_predictions(conn, _forecast(), "credit_consumption", AS_OF)
    assert stats["changed"] == 0 and stats["deleted_stale"] == 0
    assert _rows(clean_db) == first and len(first) == 2 * 2 * 5


def test_shorter_horizon_replaces_stale_rows(clean_db):
    with clean_db.begin() as conn:
        publish_predictions(conn, _forecast(h=5), "credit_consumption", AS_OF)
    with clean_db.begin() as conn:
        stats = publish_predictions(conn, _forecast(h=3, shift=1.0, dims=("total",)), "credit_consumption", AS_OF)
    assert stats["deleted_stale"] == 2 * 5 + 2 * 2
    assert len(_rows(clean_db)) == 2 * 3


def test_failed_publish_keeps_previous_predictions(clean_db):
    with clean_db.begin() as conn:
        publish_predictions(conn, _forecast(), "credit_consumption", AS_OF)
    before = _rows(clean_db)
    with pytest.raises(RuntimeError):
        with clean_db.begin() as conn:
            publish_predictions(conn, _forecast(shift=5.0), "credit_consumption", AS_OF)
            raise RuntimeError("a later step of the same run failed")
    assert _rows(clean_db) == before


def test_predictions_must_be_after_as_of(clean_db):
    bad = _forecast().assign(prediction_date=AS_OF)
    with pytest.raises(ValueError, match="after the as-of date"):
        with clean_db.begin() as conn:
            publish_predictions(conn, bad.drop_duplicates(["workspace_id", "dimension"]), "credit_consumption", AS_OF)


def test_churn_publish_is_idempotent_and_drops_unscored_users(clean_db):
    frame = pd.DataFrame({
        "workspace_id": ["ws-a", "ws-a", "ws-b"], "user_id": ["u1", "u2", "u3"],
        "churn_probability": [0.9, 0.2, 0.5], "risk_score": [90, 20, 50],
        "risk_factors": [[{"feature": "recency_days", "text": "no activity for 12 days"}]] * 3,
        "recommended_actions": [[{"id": "reengage"}]] * 3, "days_until_churn": [5, None, 20],
        "model_version": "3",
    })
    for _ in range(2):
        with clean_db.begin() as conn:
            publish_churn_scores(conn, frame, AS_OF)
    first = _rows(clean_db, "churn_predictions")
    assert len(first) == 3
    with clean_db.begin() as conn:
        stats = publish_churn_scores(conn, frame.iloc[:2], AS_OF)
    assert stats == {"rows": 2, "changed": 0, "deleted_stale": 1}
    assert _rows(clean_db, "churn_predictions") == [r for r in first if r.risk_score != 50]


def test_bi_view_keeps_past_forecasts_beside_realised_credits(clean_db):
    from core.ids import entity_uuid

    running = _forecast(h=3, dims=("total",)).query("workspace_id == 'ws-a'").assign(target_metric="credits_cumulative")
    running["predicted_value"] = running["confidence_lower"] = running["confidence_upper"] = \
        [100.0 * (d - AS_OF).days for d in running["prediction_date"]]
    with clean_db.begin() as conn:
        publish_predictions(conn, pd.concat([_forecast(h=5), running]), "credit_consumption", AS_OF)
        # the next night: only future days are replaced, the forecast of AS_OF + 1 stays
        later = _forecast(h=5, shift=2.0)
        publish_predictions(conn, later[later["prediction_date"] > AS_OF + timedelta(days=1)],
                            "credit_consumption", AS_OF + timedelta(days=1))
        ws_a = str(entity_uuid("workspace", "ws-a"))
        conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id)"
                             " values ('workspace', :id, 'ws-a')"), {"id": ws_a})
        conn.execute(sa.text("insert into analytics.workspace_daily_metrics values"
                             " (:id, :d, 'total', 10.5, 3, 0, 2), (:id, :d, 'chat', 99.0, 3, 0, 2)"),
                     {"id": ws_a, "d": AS_OF + timedelta(days=1)})
        conn.execute(sa.text("set local role pae_reader"))
        rows = conn.execute(sa.text(
            "select workspace_external_id, dimension, predicted_value, actual_credits, actual_within_interval,"
            " days_ahead from analytics.v_credit_forecast where prediction_date = :d order by 1, 2"),
            {"d": AS_OF + timedelta(days=1)}).all()
        cumulative = conn.execute(sa.text(
            "select days_ahead, predicted_credits from analytics.v_credit_forecast_cumulative"
            " where workspace_external_id = 'ws-a' order by days_ahead")).all()
    assert [tuple(r[:5]) for r in rows[:2]] == [("ws-a", "chat", 10.0, 99.0, False), ("ws-a", "total", 10.0, 10.5, True)]
    assert all(r.days_ahead == 1 for r in rows)
    assert rows[2:] and all(r.workspace_external_id is None and r.actual_credits is None for r in rows[2:])
    assert [tuple(r) for r in cumulative] == [(1, 100.0)]  # later days were replaced by the next night's run


def _scenarios(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select scenario, count(*) from analytics.predictions group by 1")).all())


def test_nightly_and_on_demand_sets_own_their_scenarios(clean_db):
    """The nightly set never deletes on-demand rows and the job writer never deletes nightly rows, and neither
    accepts the other's scenario (PublishTarget.scenarios)."""
    from core.jobs import ON_DEMAND_SCENARIO
    from pipelines.publish import publish_on_demand_predictions

    with clean_db.begin() as conn:
        publish_predictions(conn, _forecast(h=5), "credit_consumption", AS_OF)
        publish_on_demand_predictions(conn, _forecast(h=4, dims=("total",)), "credit_consumption", AS_OF)
    assert _scenarios(clean_db) == {"likely": 2 * 2 * 5, ON_DEMAND_SCENARIO: 2 * 4}
    with clean_db.begin() as conn:  # a shorter nightly set drops only its own stale rows
        stats = publish_predictions(conn, _forecast(h=2, dims=("total",)), "credit_consumption", AS_OF)
    assert stats["deleted_stale"] == 2 * 5 + 2 * 3
    assert _scenarios(clean_db) == {"likely": 2 * 2, ON_DEMAND_SCENARIO: 2 * 4}
    with clean_db.begin() as conn:  # a shorter job drops only on-demand rows
        stats = publish_on_demand_predictions(conn, _forecast(h=1, dims=("total",)), "credit_consumption", AS_OF)
    assert stats["deleted_stale"] == 2 * 3
    assert _scenarios(clean_db) == {"likely": 2 * 2, ON_DEMAND_SCENARIO: 2}
    with pytest.raises(ValueError, match="not this target's"):
        with clean_db.begin() as conn:
            publish_predictions(conn, _forecast().assign(scenario=ON_DEMAND_SCENARIO), "credit_consumption", AS_OF)
    assert _scenarios(clean_db) == {"likely": 2 * 2, ON_DEMAND_SCENARIO: 2}


def test_stale_row_delete_probes_the_staged_key_even_with_stale_statistics(clean_db):
    """A re-publish with the table's statistics stale (filled since its last analyze) must not scan the staged
    rows once per table row: the staged set is indexed on its key (a re-run at 300 workspaces was quadratic)."""
    from pipelines.publish import PREDICTIONS, prediction_rows, stage_rows, stale_rows_delete

    parts = [_forecast(h=60, dims=[f"d{i}" for i in range(20)]) for _ in range(5)]
    frame = pd.concat([p.assign(workspace_id=p["workspace_id"] + f"-{w}") for w, p in enumerate(parts)],
                      ignore_index=True)
    with clean_db.begin() as conn:
        conn.execute(sa.text("analyze analytics.predictions"))  # statistics of the empty table, then 24,000 rows
        publish_predictions(conn, frame, "credit_consumption", AS_OF)
    with clean_db.begin() as conn:
        stage_rows(conn, PREDICTIONS, prediction_rows(frame, AS_OF))
        plan = "\n".join(conn.execute(sa.text("explain " + stale_rows_delete(PREDICTIONS, PREDICTIONS.scope)),
                                      {"type": "credit_consumption", "as_of": AS_OF}).scalars())
        conn.rollback()
    assert "Seq Scan on stage_rows s" not in plan, plan
    with clean_db.begin() as conn:  # and the re-run changes nothing
        stats = publish_predictions(conn, frame, "credit_consumption", AS_OF)
    assert stats["changed"] == 0 and stats["deleted_stale"] == 0
