"""A/B on realised accuracy: arms on the snapshots, the nightly comparison, and the promotion it earns."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core.arms import arm_of
from core.settings import Settings
from pipelines.ab import assign_snapshot_arms, compare_arms
from pipelines.registry import CHAMPION, apply_published

D = date(2026, 3, 31)
WORKSPACES = [uuid.UUID(int=1000 + i) for i in range(60)]
SHARE, SALT = 0.3, "pae-ab"


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        for t in ("prediction_snapshots", "prediction_accuracy", "model_decisions", "ab_comparisons"):
            conn.execute(sa.text(f"delete from analytics.{t}"))
    return clean_db


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                    ab_challenger_share=SHARE, ab_salt=SALT, ab_min_workspace_days=50, ab_bootstrap_samples=500)


def test_snapshots_carry_each_workspace_arm(db):
    with db.begin() as conn:
        for w in WORKSPACES:
            conn.execute(sa.text(
                "insert into analytics.prediction_snapshots (workspace_id, prediction_type, target_metric, dimension,"
                " granularity, scenario, prediction_date, prediction_hour, as_of_date, days_ahead, predicted_value,"
                " model_version) values (:w, 'credit_consumption', 'credits', 'total', 'day', 'likely', :d, 0, :a, 1,"
                " 1, '1')"), {"w": w, "d": D + timedelta(days=1), "a": D})
        moved = assign_snapshot_arms(conn, "credit_consumption", D, SHARE, SALT)
        got = dict(conn.execute(sa.text("select workspace_id, arm from analytics.prediction_snapshots")).all())
    expected = {w: arm_of(str(w), SHARE, SALT) for w in WORKSPACES}
    assert got == expected and moved == sum(a == "challenger" for a in expected.values()) > 0
    with db.begin() as conn:  # A/B turned off: every row back to champion
        assert assign_snapshot_arms(conn, "credit_consumption", D, 0.0, SALT) == 0
        assert conn.execute(sa.text("select count(distinct arm) from analytics.prediction_snapshots")).scalar() == 1


def _accuracy(db, ratio: dict[str, float], versions: dict[str, str], days: int = 5) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for w in WORKSPACES:
        arm = arm_of(str(w), SHARE, SALT)
        for k in range(days):
            naive = float(rng.gamma(2, 20))
            rows.append({"w": w, "d": D - timedelta(days=k), "v": versions[arm], "arm": arm,
                         "err": naive * ratio[arm] * rng.uniform(0.9, 1.1), "naive": naive, "actual": naive * 4})
    with db.begin() as conn:
        conn.execute(sa.text(
            "insert into analytics.prediction_accuracy (workspace_id, prediction_type, target_metric, dimension,"
            " horizon_bucket, scored_date, model_version, arm, n, abs_error, squared_error, actual_total,"
            " naive_abs_error, hits) values (:w, 'credit_consumption', 'credits', 'total', '1d', :d, :v, :arm, 1,"
            " :err, :err * :err, :actual, :naive, 1)"), rows)


def _model(settings, db, name: str, n_versions: int):
    from pipelines.registry import configure

    configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.create_registered_model(name)
    (settings.data_dir / "m").mkdir(parents=True, exist_ok=True)
    for _ in range(n_versions):
        v = client.create_model_version(name, source=str(settings.data_dir / "m"))
        client.set_model_version_tag(name, v.version, "pae_decision", "promote")
        with db.begin() as conn:
            conn.execute(sa.text(
                "insert into analytics.ml_models (model_name, model_type, version, target_metric, training_params,"
                " performance_metrics, is_active) values (:n, 't', :v, 'credits', '{}', '{}', :active)"),
                {"n": name, "v": str(v.version), "active": v.version == "1"})
    client.set_registered_model_alias(name, CHAMPION, "1")
    return client


def test_a_better_challenger_arm_earns_a_promotion_applied_at_the_next_publish(db, settings):
    client = _model(settings, db, "ab-m", 2)
    _accuracy(db, {"champion": 0.9, "challenger": 0.6}, {"champion": "1", "challenger": "2"})
    out = compare_arms(db, settings, kind="consumption", prediction_type="credit_consumption", model_name="ab-m",
                       run_date=D)
    assert out["verdict"] == "challenger_better" and out["promote"]
    assert out["relative_ci_high"] <= -0.02 and out["challenger_version"] == "2" and out["champion_version"] == "1"
    again = compare_arms(db, settings, kind="consumption", prediction_type="credit_consumption", model_name="ab-m",
                         run_date=D)
    assert again["mlflow_run_id"] == out["mlflow_run_id"]  # a re-run logs into the same MLflow run
    with db.connect() as conn:
        rows = conn.execute(sa.text("select * from analytics.v_ab_comparisons")).mappings().all()
        decision = conn.execute(sa.text("select * from analytics.v_model_decisions")).mappings().one()
        perf = conn.execute(sa.text("select performance_metrics from analytics.ml_models where model_name = 'ab-m'"
                                    " and version = '2'")).scalar()
    assert len(rows) == 1 and rows[0]["verdict"] == "challenger_better"
    n_chall = sum(arm_of(str(w), SHARE, SALT) == "challenger" for w in WORKSPACES)
    assert (rows[0]["workspaces_challenger"], rows[0]["workspace_days_challenger"]) == (n_chall, 5 * n_chall)
    assert rows[0]["ci_low"] <= rows[0]["diff"] <= rows[0]["ci_high"] < 0
    assert (decision["version"], decision["source"], decision["decision"], decision["applied"]) == (
        "2", "ab_realised", "promote", False)
    assert decision["figures"]["relative_ci_high"] == pytest.approx(out["relative_ci_high"])
    assert perf["ab_decision"]["decision"] == "promote"
    assert client.get_model_version("ab-m", "2").tags["ab_pae_decision"] == "promote"
    assert str(client.get_model_version_by_alias("ab-m", CHAMPION).version) == "1"  # not before a publish
    # the next publish serves v1 to the champion arm and v2 to the challenger arm: v2 becomes champion
    applied = apply_published(db, settings, model_name="ab-m", version="1", served_versions=["1", "2"])
    assert applied == {"model_name": "ab-m", "champion": "2", "previous": "1", "moved": True, "source": "ab_realised"}
    assert str(client.get_model_version_by_alias("ab-m", CHAMPION).version) == "2"
    with db.connect() as conn:
        assert conn.execute(sa.text("select applied from analytics.v_model_decisions")).scalar()
        assert dict(conn.execute(sa.text("select version, is_active from analytics.ml_models"
                                         " where model_name = 'ab-m'")).all()) == {"1": False, "2": True}


def test_no_promotion_without_evidence(db, settings):
    _model(settings, db, "ab-n", 2)
    _accuracy(db, {"champion": 0.8, "challenger": 0.8}, {"champion": "1", "challenger": "2"})
    out = compare_arms(db, settings, kind="consumption", prediction_type="credit_consumption", model_name="ab-n",
                       run_date=D)
    assert out["verdict"] == "no_difference" and not out["promote"]
    few = compare_arms(db, settings.model_copy(update={"ab_min_workspace_days": 10_000}), kind="consumption",
                       prediction_type="credit_consumption", model_name="ab-n", run_date=D)
    assert few["verdict"] == "insufficient_data" and few["diff"] is None
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.model_decisions")).scalar() == 0
        assert conn.execute(sa.text("select verdict from analytics.ab_comparisons")).scalar() == "insufficient_data"


def test_a_kind_with_nothing_scored_records_nothing(db, settings):
    out = compare_arms(db, settings, kind="growth", prediction_type="growth", model_name="none", run_date=D)
    assert out["verdict"] is None and "no realised accuracy" in out["reason"]
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.ab_comparisons")).scalar() == 0


def test_churn_arms_are_compared_on_brier_and_a_better_challenger_earns_a_promotion(db, settings):
    from pipelines.ab import compare_outcome_arms

    _model(settings, db, "ab-churn", 2)
    rng = np.random.default_rng(1)
    rows = []
    for w in WORKSPACES:
        arm = arm_of(str(w), SHARE, SALT)
        for u in range(10):
            y = int(rng.random() < 0.3)
            p = y * 0.8 + 0.1 if arm == "challenger" else float(rng.uniform(0.2, 0.6))  # sharper, calibrated
            rows.append({"workspace_id": str(w), "user_id": f"u{u}", "arm": arm, "model_version": "2" if arm ==
                         "challenger" else "1", "as_of_date": D - timedelta(days=30), "probability": p, "outcome": y})
    outcomes = pd.DataFrame(rows)
    out = compare_outcome_arms(db, settings, kind="churn", prediction_type="churn_30d", model_name="ab-churn",
                               run_date=D, outcomes=outcomes)
    assert out["verdict"] == "challenger_better" and out["promote"] and out["metric"] == "brier"
    champion = outcomes[outcomes["arm"] == "champion"]
    assert out["metric_champion"] == pytest.approx(((champion["probability"] - champion["outcome"]) ** 2).mean())
    with db.connect() as conn:
        row = conn.execute(sa.text("select * from analytics.ab_comparisons where kind = 'churn'")).mappings().one()
        decision = conn.execute(sa.text("select version, source, decision from analytics.model_decisions"
                                        " where model_name = 'ab-churn'")).one()
    assert (row["champion_version"], row["challenger_version"], row["metric"]) == ("1", "2", "brier")
    assert row["workspace_days_champion"] == len(champion)  # scored users
    assert tuple(decision) == ("2", "ab_realised", "promote")
    none = compare_outcome_arms(db, settings, kind="churn", prediction_type="churn_30d", model_name="ab-churn",
                                run_date=D, outcomes=None)
    assert none["verdict"] is None and "no realised outcomes" in none["reason"]
