"""Champion/challenger on a throwaway MLflow registry: registration decides, publishing moves the alias."""
import json
from datetime import date

import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.registry import (CHALLENGER, CHAMPION, ModelRecord, apply_published, champion_version, promote,
                                register_version)

D = date(2026, 3, 31)


@pytest.fixture
def registry(tmp_path):
    from pipelines.registry import configure

    settings = Settings(data_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    configure(settings)
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    client.create_registered_model("m")

    def add(value: float) -> str:
        (tmp_path / "model").mkdir(exist_ok=True)
        v = client.create_model_version("m", source=str(tmp_path / "model"))
        client.set_model_version_tag("m", v.version, "val_wape", repr(value))
        return str(v.version)

    return settings, client, add


@pytest.fixture
def db(clean_db):
    with clean_db.begin() as conn:
        conn.execute(sa.text("delete from analytics.model_decisions"))
    return clean_db


def _champion(client) -> str:
    return str(client.get_model_version_by_alias("m", CHAMPION).version)


def test_promote_decides_and_tags_but_only_publishing_moves_the_champion(registry, db):
    settings, client, add = registry
    v1 = add(0.20)
    first = promote("m", v1, "wape", 0.20, settings)
    assert first.promoted and first.reason == "no champion yet" and first.decision == "promote"
    assert champion_version("m", settings) is None  # decided, not applied
    assert client.get_model_version("m", v1).tags["pae_decision"] == "promote"
    assert apply_published(db, settings, model_name="m", version=v1)["moved"]
    assert _champion(client) == v1
    v2 = add(0.30)
    refused = promote("m", v2, "wape", 0.30, settings, tolerance=0.25)
    assert not refused.promoted and "outside" in refused.reason and refused.champion_version == v1
    tags = client.get_model_version("m", v2).tags
    assert tags["pae_decision"] == "keep" and json.loads(tags["pae_decision_figures"])["champion_value"] == 0.20
    assert str(client.get_model_version_by_alias("m", CHALLENGER).version) == v2
    # publishing a version decided "keep" does not make it champion
    assert not apply_published(db, settings, model_name="m", version=v2)["moved"]
    assert _champion(client) == v1
    v3 = add(0.21)  # within tolerance of the champion
    assert promote("m", v3, "wape", 0.21, settings, tolerance=0.25).promoted
    assert _champion(client) == v1
    apply_published(db, settings, model_name="m", version=v3)
    assert _champion(client) == v3


def test_higher_is_better_metrics(registry, db):
    settings, client, add = registry
    v1 = add(0.88)
    assert promote("m", v1, "wape", 0.88, settings, lower_is_better=False).reason == "no champion yet"
    apply_published(db, settings, model_name="m", version=v1)
    v2 = add(0.80)  # AUC-like: 0.80 is worse than 0.88 by more than 3%
    refused = promote("m", v2, "wape", 0.80, settings, lower_is_better=False, tolerance=0.03)
    assert not refused.promoted and refused.champion_value == 0.88
    v3 = add(0.90)
    assert promote("m", v3, "wape", 0.90, settings, lower_is_better=False, tolerance=0.03).promoted
    apply_published(db, settings, model_name="m", version=v3)
    assert _champion(client) == v3
    assert str(client.get_model_version_by_alias("m", CHALLENGER).version) == v3


def test_a_backtest_decision_overrides_the_tolerance_rule(registry, db):
    import pandas as pd

    from models.promotion import compare_on_windows

    settings, client, add = registry
    v1 = add(0.20)
    promote("m", v1, "wape", 0.20, settings)
    apply_published(db, settings, model_name="m", version=v1)
    windows = pd.date_range("2026-01-01", periods=8, freq="7D")
    champ = pd.DataFrame({"window": windows, "metric": 1.0})
    chall = pd.DataFrame({"window": windows, "metric": [0.99] * 8})  # wins all, but only 1% better
    v2 = add(0.19)  # within tolerance, yet the windows say keep
    decision = promote("m", v2, "wape", 0.19, settings, backtest=compare_on_windows(champ, chall))
    assert not decision.promoted and decision.policy == "backtest_windows"
    assert decision.figures["wins"] == 8 and "needs +2.0%" in decision.reason


def _register(db, settings, tmp_path, value: float, day: date):
    import mlflow

    mlflow.set_experiment("registry-test")
    with mlflow.start_run() as run:
        (tmp_path / "artifact.txt").write_text(str(value))
        mlflow.log_artifact(str(tmp_path / "artifact.txt"), "model")
    record = ModelRecord(model_type="t", target_metric="credits", training_params={}, performance_metrics={"wape": value},
                         feature_importance=None, training_data_start=None, training_data_end=day)
    return register_version(db, settings, model_name="reg", model_uri=f"{run.info.artifact_uri}/model",
                            artifact_uri=run.info.artifact_uri, metric="wape", value=value, lower_is_better=True,
                            tolerance=0.25, print_hash=f"h{value}{day}", record=record, kind="consumption")


def test_a_run_killed_after_registration_leaves_the_champion_and_active_model(registry, db, tmp_path):
    settings, client, _ = registry
    first = _register(db, settings, tmp_path, 0.20, D)
    apply_published(db, settings, model_name="reg", version=first.version)  # the publish step, committed
    second = _register(db, settings, tmp_path, 0.19, date(2026, 4, 1))  # promote... then the run dies
    assert second.promoted
    assert str(client.get_model_version_by_alias("reg", CHAMPION).version) == first.version
    with db.connect() as conn:
        active = dict(conn.execute(sa.text("select version, is_active from analytics.ml_models"
                                           " where model_name = 'reg'")).all())
        decisions = conn.execute(sa.text("select version, decision, kind, applied_at is not null, figures"
                                         " from analytics.model_decisions where model_name = 'reg'"
                                         " order by version")).all()
    assert active == {first.version: True, second.version: False}
    assert [(v, d, k, applied) for v, d, k, applied, _ in decisions] == [
        (first.version, "promote", "consumption", True), (second.version, "promote", "consumption", False)]
    assert decisions[1].figures["champion_version"] == first.version and decisions[1].figures["value"] == 0.19
    # re-running the killed date reuses the version and its decision row, and still moves nothing
    again = _register(db, settings, tmp_path, 0.19, date(2026, 4, 1))
    assert again.version == second.version
    with db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.model_decisions where model_name = 'reg'")).scalar() == 2
    assert str(client.get_model_version_by_alias("reg", CHAMPION).version) == first.version


def test_scoring_serves_the_newest_pending_promotion_then_publishing_applies_it(registry, db, tmp_path):
    from pipelines.registry import serving_version

    settings, client, _ = registry
    assert serving_version(db, settings, "reg") is None
    first = _register(db, settings, tmp_path, 0.20, D)
    assert serving_version(db, settings, "reg") == first.version  # decided promote, no champion yet
    apply_published(db, settings, model_name="reg", version=first.version)
    refused = _register(db, settings, tmp_path, 0.90, date(2026, 4, 1))  # a retrain decided "keep"
    assert not refused.promoted and serving_version(db, settings, "reg") == first.version
    better = _register(db, settings, tmp_path, 0.18, date(2026, 4, 2))  # a retrain decided "promote"
    assert serving_version(db, settings, "reg") == better.version
    assert str(client.get_model_version_by_alias("reg", CHAMPION).version) == first.version
    apply_published(db, settings, model_name="reg", version=better.version)
    assert str(client.get_model_version_by_alias("reg", CHAMPION).version) == better.version
    assert serving_version(db, settings, "reg") == better.version


def test_a_promote_decision_about_a_version_the_registry_lacks_is_skipped(registry, db, tmp_path):
    from pipelines.registry import REGISTRATION, record_decision, serving_version

    settings, client, _ = registry
    first = _register(db, settings, tmp_path, 0.20, D)
    apply_published(db, settings, model_name="reg", version=first.version)
    with db.begin() as conn:  # e.g. written by a run against another MLflow store on the same database
        record_decision(conn, kind=None, model_name="reg", version="99", source=REGISTRATION, run_date=D,
                        decision="promote", reason="elsewhere", figures={})
    assert serving_version(db, settings, "reg") == first.version
