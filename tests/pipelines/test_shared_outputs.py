"""Shard outputs, merged frames and MLflow artifacts on the object store (moto's S3 server on loopback, started by
``tests/conftest.py``): what one process writes under its own ``data_dir``, another reads with its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from core.settings import REPO_ROOT, Settings
from core.storage import read_frame
from pipelines.results import (
    KindResult,
    ShardResult,
    localize_refs,
    localize_shards,
    share,
    share_kind,
    share_ref,
    share_shard,
)
from tests.conftest import S3_BUCKET, S3_CREDENTIALS

AS_OF = "as_of=2026-03-31"


def _worker(tmp_path: Path, name: str, prefix: str, endpoint: str, **kw) -> Settings:
    return Settings(data_dir=tmp_path / name, storage_uri=f"s3://{S3_BUCKET}/{prefix}", s3_endpoint_url=endpoint, **kw)


def _shard_folder(settings: Settings, shard: int) -> Path:
    out = settings.data_dir / "forecasts" / AS_OF / f"shard={shard}"
    (out / "state").mkdir(parents=True)
    pd.DataFrame({"workspace_id": [f"w{shard}"], "yhat": [1.0 + shard]}).to_parquet(out / "forecast.parquet")
    (out / "importance.json").write_text(json.dumps({"shard": shard}))
    (out / "state" / "total.json").write_text("{}")
    return out


def test_shard_outputs_and_frames_move_between_workers_through_the_bucket(s3_env, tmp_path: Path):
    prefix = f"shared-{uuid.uuid4().hex[:6]}"
    w1, w2 = (_worker(tmp_path, n, prefix, s3_env) for n in ("w1", "w2"))
    assert str(w1.runs_root) == f"s3://{S3_BUCKET}/{prefix}/runs"
    folder = _shard_folder(w1, 0)
    result = ShardResult(kind="consumption", shard=0, path=str(folder), n_rows=1,
                         details={"path": str(folder), "n_rows": 1, "mode": "trained"})

    shared = share_shard(result, w1)  # what the shard task returns (XCom): URIs, not w1's disk
    uri = f"s3://{S3_BUCKET}/{prefix}/runs/forecasts/{AS_OF}/shard=0"
    assert shared.path == shared.details["path"] == uri and shared.details["mode"] == "trained"
    # the merge runs on w2, whose disk never saw w1's folder
    (local,) = localize_shards([ShardResult.model_validate(shared.model_dump(mode="json"))], w2)
    there = w2.data_dir / "forecasts" / AS_OF / "shard=0"
    assert local.path == local.details["path"] == str(there)
    assert sorted(p.relative_to(there).as_posix() for p in there.rglob("*") if p.is_file()) == [
        "forecast.parquet", "importance.json", "state/total.json"]
    pd.testing.assert_frame_equal(pd.read_parquet(there / "forecast.parquet"),
                                  pd.read_parquet(folder / "forecast.parquet"))

    # a retrain's refs take the same way; a churn-like result whose path is a file keeps its other names shared
    ref = share_ref({"path": str(folder), "shard": 0, "n_rows": 1}, w1)
    assert ref["path"] == uri and localize_refs([ref], w2)[0]["path"] == str(there)
    scores = w1.data_dir / "churn" / AS_OF / "scores.parquet"
    scores.parent.mkdir(parents=True)
    pd.DataFrame({"user_id": ["u1"], "p": [0.2]}).to_parquet(scores)
    churn = share_shard(ShardResult(kind="churn", shard=0, path=str(scores),
                                    details={"scores_path": str(scores), "status": "success"}), w1)
    assert churn.path == churn.details["scores_path"] == f"s3://{S3_BUCKET}/{prefix}/runs/churn/{AS_OF}/scores.parquet"
    (merged_churn,) = localize_shards([churn], w2)  # the merge reads (and may rewrite) the scores on its own disk
    local_scores = w2.data_dir / "churn" / AS_OF / "scores.parquet"
    assert merged_churn.path == merged_churn.details["scores_path"] == str(local_scores) and local_scores.exists()
    assert merged_churn.details["status"] == "success"

    # the merged frame the publisher reads (on a third process: by URI)
    frame_path = w2.data_dir / "forecasts" / AS_OF / "forecast.parquet"
    merged = pd.DataFrame({"workspace_id": ["w0"], "yhat": [1.0]})
    merged.to_parquet(frame_path)
    kind = share_kind(KindResult(kind="consumption", status="success", frame_path=str(frame_path),
                                 extra_sets={"x": str(there / "forecast.parquet")}), w2)
    assert kind.frame_path == f"s3://{S3_BUCKET}/{prefix}/runs/forecasts/{AS_OF}/forecast.parquet"
    assert kind.extra_sets == {"x": f"{uri}/forecast.parquet"}
    pd.testing.assert_frame_equal(read_frame(w1.storage_path(kind.frame_path)), merged)
    assert share(kind.frame_path, w1) == kind.frame_path  # shared already: left alone

    with pytest.raises(ValueError, match="not under data_dir"):
        share(str(tmp_path / "elsewhere.parquet"), w1)


def test_without_storage_uri_nothing_is_copied(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "pae")
    assert settings.runs_root == settings.data_dir and settings.mlflow_artifact_root is None
    folder = _shard_folder(settings, 1)
    result = ShardResult(kind="consumption", shard=1, path=str(folder), details={"path": str(folder)})
    assert share_shard(result, settings) is result and localize_shards([result], settings) == [result]
    assert share_ref({"path": str(folder)}, settings) == {"path": str(folder)}
    kind = KindResult(kind="consumption", status="success", frame_path=str(folder / "forecast.parquet"))
    assert share_kind(kind, settings) is kind
    assert sorted(p.name for p in (tmp_path / "pae").iterdir()) == ["forecasts"]


DOWNLOAD = """
import json, sys
from core.settings import Settings
from pipelines.serving import version_artifact_dir
s = Settings(data_dir=sys.argv[1], storage_uri=sys.argv[2], s3_endpoint_url=sys.argv[3],
             mlflow_tracking_uri=sys.argv[4])
folder = version_artifact_dir(s, sys.argv[5], sys.argv[6], "scoring")
print(json.dumps({"folder": str(folder), "files": {p.name: p.read_text() for p in sorted(folder.iterdir())}}))
"""


def test_mlflow_artifacts_on_the_bucket_are_read_by_another_process(s3_env, tmp_path: Path, monkeypatch):
    from pipelines.registry import configure, use_experiment

    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)  # configure() sets it for this process
    prefix = f"ml-{uuid.uuid4().hex[:6]}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainer = _worker(tmp_path, "trainer", prefix, s3_env, mlflow_tracking_uri=tracking)
    assert trainer.mlflow_artifact_root == f"s3://{S3_BUCKET}/{prefix}/mlflow"
    mlflow = configure(trainer)
    exp_id = use_experiment(trainer, "pae-test-artifacts")
    assert mlflow.get_experiment(exp_id).artifact_location == f"s3://{S3_BUCKET}/{prefix}/mlflow/pae-test-artifacts"
    scoring = tmp_path / "scoring"
    scoring.mkdir()
    (scoring / "weights.json").write_text('{"ETS": 0.6, "Theta": 0.4}')
    (scoring / "meta.json").write_text('{"trained_through": "2026-03-31"}')
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(scoring), "scoring")
    client = mlflow.tracking.MlflowClient()
    client.create_registered_model("pae-test-artifacts")
    version = str(client.create_model_version("pae-test-artifacts", f"{run.info.artifact_uri}/scoring",
                                              run_id=run.info.run_id).version)
    keys = trainer.storage_root.fs.find(f"{S3_BUCKET}/{prefix}/mlflow")
    assert sorted(k.rsplit("/", 1)[-1] for k in keys if "/scoring/" in k) == ["meta.json", "weights.json"]
    assert not (tmp_path / "trainer" / "mlartifacts").exists()  # nothing on the trainer's disk

    env = {**os.environ, **S3_CREDENTIALS, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("MLFLOW_S3_ENDPOINT_URL", None)
    scorer = tmp_path / "scorer"
    out = subprocess.run([sys.executable, "-c", DOWNLOAD, str(scorer), str(trainer.storage_uri), s3_env, tracking,
                          "pae-test-artifacts", version], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["folder"].startswith(str(scorer / "scoring_artifacts" / run.info.run_id))
    assert got["files"] == {"meta.json": '{"trained_through": "2026-03-31"}',
                            "weights.json": '{"ETS": 0.6, "Theta": 0.4}'}


def test_retrain_refs_are_json_as_xcom_carries_them():
    import json

    import numpy as np

    from pipelines.results import json_ready

    ref = {"path": "/x", "pr_auc": float("nan"), "n": np.int64(3), "scores": [np.float64(0.5), np.inf],
           "nested": {"mase": np.float64("nan")}}
    out = json_ready(ref)
    assert out == {"path": "/x", "pr_auc": None, "n": 3, "scores": [0.5, None], "nested": {"mase": None}}
    json.dumps(out, allow_nan=False)  # what the task runner's XCom push requires
