"""``pae cluster``'s checks that need no running component: the environment every component gets and the refusals."""
from __future__ import annotations

from core.settings import Settings
from pipelines import cli
from pipelines.cluster import LocalCluster


def test_worker_data_dirs_without_shared_storage_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url="postgresql://postgres@127.0.0.1/x",
                                                              data_dir=tmp_path / "pae", storage_uri=None))
    assert cli.main(["cluster", "--worker-data-dirs"]) == 2
    assert "needs PAE_STORAGE_URI" in capsys.readouterr().err
    assert not (tmp_path / "pae" / "airflow-cluster").exists()  # nothing started


def test_components_get_the_queue_broker_and_no_schedules(tmp_path):
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:5432/postgres", data_dir=tmp_path)
    env = LocalCluster(settings, home=tmp_path / "home", broker_url="redis://127.0.0.1:6379/3", queue="q-1").env()
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "q-1"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/3"
    # unpausing a DAG with a schedule would also start its latest interval: only triggered runs run
    assert env["PAE_NIGHTLY_SCHEDULE"] == env["PAE_RETRAIN_SCHEDULE"] == "none"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("/pae_airflow")
