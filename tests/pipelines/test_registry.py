"""Champion/challenger promotion on a throwaway MLflow registry."""
import pytest

from core.settings import Settings
from pipelines.registry import CHALLENGER, CHAMPION, promote


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


def test_first_version_becomes_champion_then_worse_challenger_is_refused(registry):
    settings, client, add = registry
    v1 = add(0.20)
    assert promote("m", v1, "wape", 0.20, settings).promoted
    v2 = add(0.30)
    decision = promote("m", v2, "wape", 0.30, settings, tolerance=0.25)
    assert not decision.promoted and "outside" in decision.reason
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == v1
    assert str(client.get_model_version_by_alias("m", CHALLENGER).version) == v2
    v3 = add(0.21)  # within tolerance of the champion
    assert promote("m", v3, "wape", 0.21, settings, tolerance=0.25).promoted
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == v3


def test_higher_is_better_metrics(registry):
    settings, client, add = registry
    v1 = add(0.88)
    assert promote("m", v1, "wape", 0.88, settings, lower_is_better=False).reason == "no champion yet"
    v2 = add(0.80)  # AUC-like: 0.80 is worse than 0.88 by more than 3%
    refused = promote("m", v2, "wape", 0.80, settings, lower_is_better=False, tolerance=0.03)
    assert not refused.promoted and refused.champion_value == 0.88
    v3 = add(0.90)
    assert promote("m", v3, "wape", 0.90, settings, lower_is_better=False, tolerance=0.03).promoted
    assert str(client.get_model_version_by_alias("m", CHAMPION).version) == v3
    assert str(client.get_model_version_by_alias("m", CHALLENGER).version) == v3
